{#- orch.galera_rolling_restart: apply the Galera configuration and restart
    the data nodes one at a time, so that the cluster never loses quorum.
    Run on the master:  salt-run state.orchestrate orch.galera_rolling_restart

    The runbook (planned by the runner lemp_galera.rolling_restart,
    _runners/lemp_galera.py):
      1. refuse unless every data node is Synced in one Primary component
         (galera-rolling-restart-refused);
      2. write the configuration on every data node (galera.config: files
         only, no restart: apply-galera-config-on-db-nodes), and garbd's;
      3. for each data node in name order: check that the cluster is complete
         (every member present), restart the node, wait until it is Synced
         again (IST from the gcache); stop at the first node that fails:
         check-galera-cluster-complete-before-restarting-<node>,
         restart-galera-<node>, wait-galera-synced-<node>.
    Steps 2-3 run inside a Zabbix maintenance window for the data nodes and
    arbitrators, opened on the monitor machine first and closed at the end,
    also after a failed step (_runners/_steps.py with_maintenance). #}
{%- from 'orch/_plan.jinja' import steps with context %}
{#- pillar='{"maintenance": false}' runs without a Zabbix maintenance window. #}
{{ steps('lemp_galera.rolling_restart', {'maintenance': salt['pillar.get']('maintenance', True)}) }}
