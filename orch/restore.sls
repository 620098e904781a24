{#- orch.restore: point-in-time restore of the Galera cluster from the backup
    store on arb1 (docs/backups.md, issue #11). Run on the master:

      salt-run state.orchestrate orch.restore pillar='{"restore": {"backup": "<id>|latest", "until": "<UTC time>|<GTID>|latest", "confirm": true}}'

    Without "confirm": true it only prints the plan (which backup, which
    binlogs, up to where, what it replaces) and changes nothing. The runner
    lemp_backup.restore (_runners/lemp_backup.py) checks the request and
    makes the plan with lemp_backup.plan; an unknown id, an `until` before
    the backup or in the future, a chain with a missing incremental or
    binlogs missing from the archive stop here (restore-refused-nothing-changed),
    before anything is touched.

    The runbook (restore_steps):
      1. restore-<stamp>-plan: the plan, printed;
      2. web-tier-to-maintenance-page: every web node answers 503 with the
         maintenance page (nginx.maintenance), /healthz (and /healthz/deep) stay up so that
         HAProxy keeps sending visitors to that page rather than an error;
      3. stop-binlog-archiver-on-arb1: what is replayed no longer moves;
      4. stop-mariadb-on-<node> (every data node), stop-garbd-on-<arb>;
      5. send-backups-and-binlogs-from-arb1-to-<node>: arb1 checks each file
         against its manifest, decrypts it (the key stays on arb1) and
         streams it over ssh into the node's staging folder, then the binlogs;
      6. prepare-backups-on-<node>: mariabackup --prepare the full, then
         --prepare --incremental-dir each incremental in order. A failure in
         5-6 leaves every datadir in place: orch.galera_recover starts the
         cluster again as it was;
      7. set-aside-datadir-on-<node>: /var/lib/mysql -> /var/lib/mysql.before-restore-<stamp>
         on every data node, kept until removed by hand (a wrong restore can
         be undone); the empty datadirs make the other nodes rejoin by SST;
      8. copy-back-on-<node>: mariabackup --copy-back, owned by mysql;
      9. replay-binlogs-on-<node>: a standalone mariadbd (no wsrep, no
         network), its GTID state seeded with the backup's, replays the
         archived binlogs by GTID up to the time (--stop-datetime,
         exclusive) or GTID (--stop-position, inclusive); it fails unless it
         ends exactly where the plan says (a GTID or latest);
     10. bootstrap-restored-cluster-from-<node> (galera.bootstrap: a new
         cluster), wait-galera-synced-<node>;
     11. set-apart-the-old-history-on-arb1: backups beyond the restored GTID
         are marked superseded and the old binlog archive is moved apart;
         start-binlog-archiver-on-arb1;
     12. the other data nodes join by SST, the accounts, garbd and
         galera-cluster-ready: the same steps as orch.galera_recover
         (lemp_galera.join_and_finish);
     13. web-tier-back-from-maintenance;
     14. take-full-backup-of-the-restored-cluster-on-arb1: the first chain
         of the new history; remove-staging-folder-on-<node>.

    A failed step stops the run: the web tier stays in maintenance, the old
    datadirs stay aside. Progress of the long steps:
    salt-run state.event 'lemp/restore/*' pretty=True (and the step outputs). #}
{%- from 'orch/_plan.jinja' import steps with context %}
{{ steps('lemp_backup.restore', {'restore': salt['pillar.get']('restore', None)}) }}
