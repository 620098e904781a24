{#- Each machine applies `common` and the states of its roles, in the order
    pillar/roles.yaml declares them: the derived topology lists them for this
    machine (`states`); a pool VM's are in `pool_machines`. #}
{%- set topology = salt['pillar.get']('topology', {}) %}
{#- a pool VM (scaling.web.pool) is configured like a machine: role web_pool #}
{%- set me = (topology.get('machines') or {}).get(grains['id']) or (topology.get('pool_machines') or {}).get(grains['id'], {}) %}
base:
  '{{ grains['id'] }}':
{%- for sls in me.get('states', ['common']) %}
    - {{ sls }}
{%- endfor %}
