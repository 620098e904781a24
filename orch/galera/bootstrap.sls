{#- orch.galera.bootstrap: form the Galera cluster, or complete it.
    Run on the master:  salt-run state.orchestrate orch.galera.bootstrap

    The runbook (decided from every data node's live answer):
      * a Primary component runs: start the data nodes that are not in it,
        one at a time, each waiting for Synced; then garbd; nothing else;
      * no node answers usably: refuse (it may be running a cluster);
      * no Primary component but some node has Galera data: refuse, this is
        an outage -> orch.galera_recover;
      * no node has Galera data (fresh deploy): bootstrap the first data node
        (galera_new_cluster), create the SST account, join the others one by
        one, start garbd, wait for the full cluster.
    It never runs galera_new_cluster while a Primary component exists. #}
{%- from 'orch/galera/lib.jinja' import cluster_steps with context %}
{{ cluster_steps() }}
