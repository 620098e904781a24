{#- orch.galera_rolling_restart: apply the Galera configuration and restart
    the data nodes one at a time, so that the cluster never loses quorum.
    Run on the master:  salt-run state.orchestrate orch.galera_rolling_restart

    The runbook:
      1. refuse unless every data node is Synced in one Primary component;
      2. write the configuration on every data node (galera.config: files
         only, no restart), and garbd's;
      3. for each data node in name order: check that the cluster is complete
         (every member present), restart the node, wait until it is Synced
         again (IST from the gcache); stop at the first node that fails. #}
{%- from 'orch/galera/lib.jinja' import members, survey, refuse with context %}
{%- set m = members() | load_json %}
{%- set s = survey(m.dbs) | load_json %}
{%- set size = (m.dbs | length) + (m.arbs | length) %}
{%- set not_synced = m.dbs | reject('in', s.synced) | list %}
{%- if not m.dbs %}
{{ refuse('galera-rolling-restart-refused', 'the topology has no db machine') }}
{%- elif not_synced or s.uuids | length != 1 %}
{{ refuse('galera-rolling-restart-refused', 'refusing a rolling restart: not every data node is Synced in one Primary component (' ~ s.detail | dictsort | map('join', ': ') | join('; ') ~ ')') }}
{%- else %}

apply-galera-config-on-db-nodes:
  salt.state:
    - tgt: {{ m.dbs | join(',') }}
    - tgt_type: list
    - sls:
      - galera.config
{%- set ns = namespace(prev='salt: apply-galera-config-on-db-nodes') %}
{%- if m.arbs %}

apply-garbd-config-on-arbitrators:
  salt.state:
    - tgt: {{ m.arbs | join(',') }}
    - tgt_type: list
    - sls:
      - garbd
    - require:
      - {{ ns.prev }}
{%- set ns.prev = 'salt: apply-garbd-config-on-arbitrators' %}
{%- endif %}
{%- for name in m.dbs %}

check-galera-cluster-complete-before-restarting-{{ name }}:
  salt.function:
    - name: galera.wait_synced
    - tgt: {{ name }}
    - kwarg:
        timeout: 120
        min_cluster_size: {{ size }}
    - require:
      - {{ ns.prev }}

restart-galera-{{ name }}:
  salt.function:
    - name: galera.restart
    - tgt: {{ name }}
    - require:
      - salt: check-galera-cluster-complete-before-restarting-{{ name }}

wait-galera-synced-{{ name }}:
  salt.function:
    - name: galera.wait_synced
    - tgt: {{ name }}
    - kwarg:
        timeout: 1800
        min_cluster_size: {{ size }}
    - require:
      - salt: restart-galera-{{ name }}
{%- set ns.prev = 'salt: wait-galera-synced-' ~ name %}
{%- endfor %}
{%- endif %}
