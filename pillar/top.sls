{#- Pillar by role: each machine gets the settings of its roles in the
    topology (pillar/topology.yaml). Secrets come from
    /srv/lemp-ha-secrets/minions/<id>.sls on the master: GPG-encrypted, one
    file per machine holding only what its roles use (pillar/secrets.spec.yaml). #}
{%- import_yaml 'topology.yaml' as topology %}
{%- set role_pillars = {
      'master': ['app'],
      'db': ['galera', 'app'],
      'arbitrator': ['galera'],
      'web': ['web', 'app'],
      'lb': ['lb'],
    } %}
base:
  '*':
    - topology
{%- for name, machine in topology.machines | dictsort %}
{%-   set files = [] %}
{%-   for role in machine.roles %}
{%-     for file in role_pillars.get(role, []) if file not in files %}{% do files.append(file) %}{% endfor %}
{%-   endfor %}
{%-   if files %}
  '{{ name }}':
{%-     for file in files %}
    - {{ file }}
{%-     endfor %}
{%-   endif %}
{%- endfor %}
  {#- the same minion again, written as a compound target so the keys differ #}
  'L@{{ grains['id'] }}':
    - match: compound
    - ignore_missing: True
    - minions.{{ grains['id'] }}
