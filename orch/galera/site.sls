{#- The database-tier step of orch.site: include it from orch/site.sls.
    It runs after `apply-highstate-on-database-tier` and ends with the step
    `galera-cluster-ready`, which the next tier must require.
    Same runbook as orch.galera.bootstrap. #}
{%- from 'orch/galera/lib.jinja' import cluster_steps with context %}
{{ cluster_steps(after='salt: apply-highstate-on-database-tier') }}
