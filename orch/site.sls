{#- orch.site: bring the whole platform to its declared state.
    Run on the master:  salt-run state.orchestrate orch.site
    Safe to re-run: a second run changes nothing.

    The runbook, in order:
      1. refuse a bad topology before touching any machine;
      2. give every minion our custom modules and fresh pillar;
      3. apply each tier's highstate in dependency order: master, then the
         database tier, then web, then the load balancers, then monitoring,
         and stop at the first tier that fails. #}
{%- set topology = salt['pillar.get']('topology') %}
{%- set ns = namespace(master=None, previous='validate-topology-before-touching-any-machine') %}
{%- for name, machine in topology.machines | dictsort if 'master' in machine.roles %}
{%-   set ns.master = name %}
{%- endfor %}
{%- set tiers = [
      ('master', ['master']),
      ('database', ['db', 'arbitrator', 'backup']),
      ('web', ['web']),
      ('load-balancers', ['lb']),
      ('monitoring', ['monitor']),
    ] %}

sync-custom-modules-and-pillar-everywhere:
  salt.function:
    - name: saltutil.sync_all
    - tgt: '*'

validate-topology-before-touching-any-machine:
  salt.function:
    - name: lemp_topology.check
    - tgt: {{ ns.master }}
    - require:
      - salt: sync-custom-modules-and-pillar-everywhere
{%- for tier, roles in tiers %}
{%- set members = [] %}
{%- for name, machine in topology.machines | dictsort %}
{%-   if machine.roles | select('in', roles) | list and name not in members %}
{%-     do members.append(name) %}
{%-   endif %}
{%- endfor %}
{%- if members %}

apply-highstate-on-{{ tier }}-tier:
  salt.state:
    - tgt: {{ members | join(',') }}
    - tgt_type: list
    - highstate: True
    - require:
      - salt: {{ ns.previous }}
{%- set ns.previous = 'apply-highstate-on-' ~ tier ~ '-tier' %}
{%- endif %}
{%- endfor %}
