{#- Each machine gets `common` and the states of its roles in the topology
    (pillar/topology.yaml); salt/roles.yaml maps a role to its states. #}
{%- import_yaml 'roles.yaml' as role_states %}
{%- set me = salt['pillar.get']('topology:machines:' ~ grains['id'], {}) %}
base:
  '{{ grains['id'] }}':
    - common
{%- for role in me.get('roles', []) %}
{%- for sls in role_states.get(role) or [] %}
    - {{ sls }}
{%- endfor %}
{%- endfor %}
