{#- Second half of orch.galera_recover (steps 3-6); run by it after every
    data node was stopped. Not meant to be run alone. #}
{%- from 'orch/galera/lib.jinja' import members, refuse, join_and_finish with context %}
{%- set m = members() | load_json %}
{%- set answers = salt['saltutil.cmd'](m.dbs, 'galera.position', tgt_type='list', timeout=900) %}
{%- set positions = {} %}
{%- for name in m.dbs %}
{%-   set answer = answers.get(name) %}
{%-   if answer is mapping and answer.get('ret') is mapping %}
{%-     do positions.update({name: answer.ret}) %}
{%-   else %}
{%-     do positions.update({name: {'error': 'no usable answer from the minion: ' ~ ((answer or {}).get('ret') | string)[:200]}}) %}
{%-   endif %}
{%- endfor %}
{%- set asked = [] %}
{%- for name in m.dbs if not positions[name].get('error') %}{% do asked.append(name) %}{% endfor %}
{%- set chooser = (asked or m.dbs)[0] %}
{%- set verdict = salt['saltutil.cmd'](chooser, 'galera.choose', kwarg={'positions': positions}, timeout=60).get(chooser, {}) %}
{%- set summary = [] %}
{%- for name, pos in positions | dictsort %}
{%-   do summary.append(name ~ ': ' ~ (pos.error if pos.get('error') else (pos.uuid ~ ':' ~ pos.seqno ~ ' safe_to_bootstrap=' ~ pos.safe_to_bootstrap ~ ' (' ~ pos.source ~ ')'))) %}
{%- endfor %}
{%- if verdict.get('retcode', 1) != 0 or verdict.get('ret') not in m.dbs %}
{{ refuse('galera-cluster-ready', 'refusing to bootstrap: ' ~ (verdict.get('ret') | string) ~ ' || positions: ' ~ summary | join('; ')) }}
{%- else %}
{%- set chosen = verdict.ret %}

chosen-galera-bootstrap-node-{{ chosen }}:
  test.succeed_without_changes:
    - name: {{ ('bootstrapping from ' ~ chosen ~ '; positions: ' ~ summary | join('; ')) | json }}

mark-safe-to-bootstrap-{{ chosen }}:
  salt.function:
    - name: galera.mark_safe_to_bootstrap
    - tgt: {{ chosen }}
    - require:
      - test: chosen-galera-bootstrap-node-{{ chosen }}

bootstrap-galera-from-{{ chosen }}:
  salt.function:
    - name: galera.bootstrap
    - tgt: {{ chosen }}
    - require:
      - salt: mark-safe-to-bootstrap-{{ chosen }}

wait-galera-synced-{{ chosen }}:
  salt.function:
    - name: galera.wait_synced
    - tgt: {{ chosen }}
    - require:
      - salt: bootstrap-galera-from-{{ chosen }}
{{ join_and_finish(m.dbs, [chosen], chosen, m.arbs, (m.dbs | length) + (m.arbs | length), 'salt: wait-galera-synced-' ~ chosen) }}
{%- endif %}
