{#- The database-tier step of orch.site: include it from orch/site.sls.
    It runs after `apply-highstate-on-database-tier` and ends with the step
    `galera-cluster-ready`, which the next tier must require.
    Same runbook as orch.galera.bootstrap. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{{ steps('lemp_galera.cluster', {'after': 'apply-highstate-on-database-tier'}) }}
