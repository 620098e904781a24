{#- orch.galera_recover: bring the Galera cluster back after a full outage
    (every data node down: clean shutdowns, crashes, SIGKILL, power loss).
    Run on the master:  salt-run state.orchestrate orch.galera_recover
    Steps 1-2 are planned by the runner lemp_galera.recover, 3-6 by
    lemp_galera.recover_positions (_runners/lemp_galera.py).

    The runbook:
      1. ask every data node for its state. If a Primary component still
         runs, there is nothing to recover: the missing nodes are joined to
         it (same as orch.galera.bootstrap). If a node does not answer,
         refuse: it may hold the latest transactions.
      2. stop MariaDB on every data node (nodes stuck trying to join:
         stop-mariadb-on-<node>), then recover-galera-from-the-most-advanced-node
         runs the rest, rendered only then:
      3. (orch.galera.recover_positions) read every node's last position
         (grastate.dat; `--wsrep-recover` when it crashed), choose the node
         to bootstrap with galera.choose_bootstrap_node -- safe_to_bootstrap=1, else the
         highest seqno, ties by name -- or refuse with the reason (a node
         unreadable, different cluster uuids, ...);
      4. mark the chosen node safe_to_bootstrap, bootstrap it, wait Synced;
      5. join the other nodes one at a time (IST/SST), each waiting Synced;
      6. create the accounts, start garbd, wait until every member is back
         (galera-cluster-ready). #}
{%- from 'orch/_plan.jinja' import steps with context %}
{{ steps('lemp_galera.recover') }}
