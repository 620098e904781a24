{#- orch.galera.bootstrap: form the Galera cluster, or complete it.
    Run on the master:  salt-run state.orchestrate orch.galera.bootstrap

    The runbook (decided from every data node's live answer by the runner
    lemp_galera.cluster, _runners/lemp_galera.py):
      * a Primary component runs: start the data nodes that are not in it,
        one at a time, each waiting for Synced (join-galera-<node>,
        wait-galera-synced-<node>); then the accounts, garbd, and
        galera-cluster-ready; nothing else;
      * no node answers usably: refuse (it may be running a cluster);
      * no Primary component but some node has Galera data: refuse, this is
        an outage -> orch.galera_recover;
      * no node has Galera data (fresh deploy): bootstrap the first data node
        (bootstrap-new-galera-cluster-on-<node>, galera_new_cluster), create
        the SST account, join the others one by one, create the accounts,
        start garbd, wait for the full cluster (galera-cluster-ready).
    It never runs galera_new_cluster while a Primary component exists. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{{ steps('lemp_galera.cluster') }}
