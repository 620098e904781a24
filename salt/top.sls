{#- Each machine applies `common` and the states of its roles, in the order
    pillar/roles.yaml declares them (derived into topology:machines:<id>:states). #}
base:
  '{{ grains['id'] }}':
{%- for sls in salt['pillar.get']('topology:machines:' ~ grains['id'] ~ ':states', ['common']) %}
    - {{ sls }}
{%- endfor %}
