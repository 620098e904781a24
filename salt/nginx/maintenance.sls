{#- The maintenance switch of the web tier (orch.restore runs it on every
    web node): pillar nginx_maintenance:enabled true writes the flag file
    the site checks (salt/nginx/files/site.conf.j2), so every request gets
    503 and the maintenance page instead of database errors, while /healthz
    answers 200 "maintenance" and HAProxy keeps the node; false removes it.
    No reload: nginx tests the flag on every request. Not in a highstate (a
    highstate must neither switch it on nor off): given on the command line.

      salt -C 'G@roles:web' state.apply nginx.maintenance pillar='{"nginx_maintenance": {"enabled": true}}' #}
{%- from 'nginx/map.jinja' import nginx with context %}
{%- set switch = salt['pillar.get']('nginx_maintenance', {}) %}
{%- set enabled = switch.get('enabled') if switch is mapping else none %}
{%- if enabled is not sameas true and enabled is not sameas false %}
{{- raise('nginx.maintenance: pillar nginx_maintenance:enabled is ' ~ (enabled | string) ~ '; give true (show the maintenance page) or false (serve the site), e.g. pillar=\'{"nginx_maintenance": {"enabled": true}}\'') }}
{%- endif %}

{%- if enabled %}

nginx-maintenance-page-on:
  file.serialize:
    - name: {{ nginx.maintenance.flag }}
    - makedirs: True
    - mode: '0644'
    - serializer: json
    - dataset:
        reason: {{ (switch.get('reason') or 'maintenance') | string | json }}
{%- else %}

nginx-maintenance-page-off:
  file.absent:
    - name: {{ nginx.maintenance.flag }}
{%- endif %}
