{#- orch.rollback: switch every web node back to the previous release, one
    at a time, the same way as orch.deploy (drain, wait, switch, check,
    enable), without a failed request.

      salt-run state.orchestrate orch.rollback
      salt-run state.orchestrate orch.rollback pillar='{"app": {"rollback_to": "1.0.0"}}'

    Without app:rollback_to, the target is the release the first web node's
    `previous` link names. No migration is undone: migrations must stay
    backward compatible (expand, then contract in a later release).
    Then record the version in pillar/app.sls, or the next highstate will
    switch forward again. #}
{%- from 'orch/_web.jinja' import app, app_dir, backend, webs, lbs, version_re, healthz_cmd with context %}
{%- set target = salt['pillar.get']('app:rollback_to', '') | string %}
{%- if not target %}
{%-   set found = salt['saltutil.cmd'](webs[0], 'file.readlink', arg=[app_dir ~ '/previous']) %}
{%-   set link = (found.get(webs[0]) or {}).get('ret') %}
{%-   if link is string and link.startswith('releases/') %}
{%-     set target = link[9:] %}
{%-   endif %}
{%- endif %}
{%- if not (target | regex_match(version_re)) or '..' in target %}
{{-   raise('orch.rollback: no release to roll back to (' ~ webs[0] ~ ' has no ' ~ app_dir ~ '/previous link); pass pillar={"app": {"rollback_to": "X.Y.Z"}}') }}
{%- endif %}
{%- set rb_pillar = {'app': {'rollback_to': target}} %}

sync-custom-modules-on-web-and-lb-nodes:
  salt.function:
    - name: saltutil.sync_all
    - tgt: {{ (webs + lbs) | join(',') }}
    - tgt_type: list

check-release-{{ target }}-is-complete-on-all-web-nodes:
  salt.function:
    - name: cmd.run
    - tgt: {{ webs | join(',') }}
    - tgt_type: list
    - arg:
      - test -e {{ app_dir }}/releases/{{ target }}/.lemp-ha-release || { echo "release {{ target }} is missing or incomplete on $(hostname)" >&2; exit 1; }
    - kwarg: {python_shell: True}
    - require:
      - salt: sync-custom-modules-on-web-and-lb-nodes
{%- set ns = namespace(previous='salt: check-release-' ~ target ~ '-is-complete-on-all-web-nodes') %}
{%- for web in webs %}

drain-{{ web }}-on-both-lbs:
  salt.function:
    - name: haproxy_runtime.drain
    - tgt: {{ lbs | join(',') }}
    - tgt_type: list
    - arg: [{{ backend }}, {{ web }}]
    - require:
      - {{ ns.previous }}

wait-until-{{ web }}-has-no-session-on-both-lbs:
  salt.function:
    - name: haproxy_runtime.wait_drained
    - tgt: {{ lbs | join(',') }}
    - tgt_type: list
    - arg: [{{ backend }}, {{ web }}]
    - kwarg: {timeout: 120}
    - require:
      - salt: drain-{{ web }}-on-both-lbs

switch-{{ web }}-back-to-release-{{ target }}:
  salt.state:
    - tgt: {{ web }}
    - sls: webapp.rollback
    - pillar: {{ rb_pillar | json }}
    - require:
      - salt: wait-until-{{ web }}-has-no-session-on-both-lbs

check-healthz-on-{{ web }}-serves-release-{{ target }}:
  salt.function:
    - name: cmd.run
    - tgt: {{ web }}
    - arg:
      - {{ healthz_cmd(target) | json }}
    - kwarg: {python_shell: True}
    - require:
      - salt: switch-{{ web }}-back-to-release-{{ target }}

enable-{{ web }}-on-both-lbs:
  salt.function:
    - name: haproxy_runtime.enable
    - tgt: {{ lbs | join(',') }}
    - tgt_type: list
    - arg: [{{ backend }}, {{ web }}]
    - require:
      - salt: check-healthz-on-{{ web }}-serves-release-{{ target }}

wait-until-{{ web }}-is-up-on-both-lbs:
  salt.function:
    - name: haproxy_runtime.wait_up
    - tgt: {{ lbs | join(',') }}
    - tgt_type: list
    - arg: [{{ backend }}, {{ web }}]
    - kwarg: {timeout: 60}
    - require:
      - salt: enable-{{ web }}-on-both-lbs
{%- set ns.previous = 'salt: wait-until-' ~ web ~ '-is-up-on-both-lbs' %}
{%- endfor %}
