{#- orch.patch: install security updates, one node at a time, tier by tier,
    each node out of service meanwhile, without a failed request
    (docs/security.md "Security updates").

      salt-run state.orchestrate orch.patch
      salt-run state.orchestrate orch.patch pillar='{"tiers": ["lb", "web"], "restart": "always"}'

    Pillar (all optional):
      tiers        which tiers, default all, always walked in this order:
                   arbitrator, backup, db, web, lb, monitor. Never the
                   master: it runs this orchestration (patch it by hand);
      restart      needed (default): restart what needrestart lists;
                   always: also the tier's main services (the lab test);
                   never: only report what runs old code;
      maintenance  false: no Zabbix maintenance window (mon1 down).

    The runbook (planned by the runner lemp_patch.plan, _runners/lemp_patch.py):
      0. refuse before touching anything when the platform is not healthy:
         a minion that does not answer, a web node not UP on an LB, the
         VIPs not on exactly one LB, a data node not Synced or the Galera
         cluster incomplete (patch-refused-nothing-was-touched);
      1. open a Zabbix maintenance window for the nodes (closed at the end,
         or after a failed step), sync the modules, apply common.updates
         (needrestart in list mode: no apt run restarts a service by itself),
         say the plan (the-patch-plan: the nodes in order, the ones skipped
         and why);
      2. for each node in turn, out of service first:
         - web: drain it on both LBs, wait until it has no session;
         - lb: stop (and mask for this boot) its keepalived, so the VIPs
           move to the other LB, and wait until that one holds both; the LB
           holding the VIPs goes last;
         - db: check the cluster is complete (never the last Synced node);
         - arbitrator: check the cluster is complete (garbd may go alone);
         then install the security updates (install-security-updates-on-<node>),
         restart what runs old code (restart-services-running-old-code-on-<node>;
         a Galera node through galera.restart; Redis on a web node and the
         salt-minion are reported, never restarted), and bring it back:
         - web: /healthz/deep is healthy (lemp_healthz.wait: 200, status ok,
           check deep, never the 200 maintenance answer; the patch left its
           database connection working), enable it on both LBs, wait until UP;
         - lb: its HAProxy sees every web node UP, start keepalived, wait
           until exactly one LB holds both VIPs;
         - db: wait until Synced with every member back;
         - arbitrator: wait until the cluster is complete again.
    A failed step stops the run: the node being worked on stays out of
    service (a web node drained; an LB's keepalived stopped and masked until
    `systemctl unmask --runtime keepalived; systemctl start keepalived`),
    the others keep serving. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- from 'orch/_web.jinja' import backend with context %}
{{ steps('lemp_patch.plan', {'backend': backend, 'tiers': salt['pillar.get']('tiers', None), 'restart': salt['pillar.get']('restart', 'needed'), 'reboot': salt['pillar.get']('reboot', False), 'maintenance': salt['pillar.get']('maintenance', True)}) }}
