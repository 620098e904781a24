{#- Each machine applies `common` and the states of its roles, in the order
    pillar/roles.yaml declares them: the derived topology lists them for this
    machine (`states`). #}
{%- set me = (salt['pillar.get']('topology', {}).get('machines') or {}).get(grains['id'], {}) %}
base:
  '{{ grains['id'] }}':
{%- for sls in me.get('states', ['common']) %}
    - {{ sls }}
{%- endfor %}
