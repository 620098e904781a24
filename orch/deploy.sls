{#- orch.deploy: rolling deploy of release app:version, one web node at a time,
    without a failed request.

      salt-run state.orchestrate orch.deploy pillar='{"app": {"version": "1.1.0"}}'

    (then record the version in pillar/app.sls, or the next highstate will
    switch back to the version written there).

    The runbook:
      1. refuse a bad version before touching any machine;
      2. unpack the release on every web node, not yet current;
      3. migrate the database once, from the first web node;
      4. for each web node in turn: drain it on both load balancers, wait
         until it has no session, make the release current on it, check its
         /healthz serves the release, put it back on both load balancers and
         wait until both see it UP.
    A failed step stops the run: the node being worked on stays drained (out
    of rotation) and the others keep serving. #}
{%- from 'orch/_web.jinja' import app, backend, webs, lbs, version_re, healthz_cmd with context %}
{%- set version = salt['pillar.get']('app:version', '') | string %}
{%- if not (version | regex_match(version_re)) or '..' in version %}
{{-   raise('orch.deploy: app:version ' ~ (version | tojson) ~ ' is missing or invalid: pass pillar={"app": {"version": "X.Y.Z"}}') }}
{%- endif %}
{#- The release's source travels with it: a deploy may name another one. #}
{%- set app_pillar = {'app': {'version': version, 'source': salt['pillar.get']('app:source', {})}} %}

sync-custom-modules-on-web-and-lb-nodes:
  salt.function:
    - name: saltutil.sync_all
    - tgt: {{ (webs + lbs) | join(',') }}
    - tgt_type: list

unpack-release-{{ version }}-on-all-web-nodes:
  salt.state:
    - tgt: {{ webs | join(',') }}
    - tgt_type: list
    - sls: webapp.release
    - pillar: {{ app_pillar | json }}
    - require:
      - salt: sync-custom-modules-on-web-and-lb-nodes

migrate-database-for-release-{{ version }}-from-{{ webs[0] }}:
  salt.state:
    - tgt: {{ webs[0] }}
    - sls: webapp.migrate
    - pillar: {{ app_pillar | json }}
    - require:
      - salt: unpack-release-{{ version }}-on-all-web-nodes
{%- set ns = namespace(previous='salt: migrate-database-for-release-' ~ version ~ '-from-' ~ webs[0]) %}
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

switch-{{ web }}-to-release-{{ version }}:
  salt.state:
    - tgt: {{ web }}
    - sls: webapp.switch
    - pillar: {{ app_pillar | json }}
    - require:
      - salt: wait-until-{{ web }}-has-no-session-on-both-lbs

check-healthz-on-{{ web }}-serves-release-{{ version }}:
  salt.function:
    - name: cmd.run
    - tgt: {{ web }}
    - arg:
      - {{ healthz_cmd(version) | json }}
    - kwarg: {python_shell: True}
    - require:
      - salt: switch-{{ web }}-to-release-{{ version }}

enable-{{ web }}-on-both-lbs:
  salt.function:
    - name: haproxy_runtime.enable
    - tgt: {{ lbs | join(',') }}
    - tgt_type: list
    - arg: [{{ backend }}, {{ web }}]
    - require:
      - salt: check-healthz-on-{{ web }}-serves-release-{{ version }}

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
