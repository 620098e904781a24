{#- Remove every lemp-cron job of this node (webapp.cron): timers stopped
    and disabled, units, command files, the wrapper and the Redis password. #}
{%- import_yaml 'webapp/defaults.yaml' as defaults %}
{%- set cron = defaults.cron %}
{%- set units = salt['lemp_cron.stale_units'](salt['file.find'](cron.unit_dir, name='lemp-cron-*', maxdepth=1), []) %}

{%- for name in units %}
{%-   if name.endswith('.timer') %}

webapp-cron-{{ name }}-stopped-and-disabled:
  service.dead:
    - name: {{ name }}
    - enable: False
    - require_in:
      - file: webapp-cron-{{ name }}-unit-file-absent
{%-   endif %}

webapp-cron-{{ name }}-unit-file-absent:
  file.absent:
    - name: {{ cron.unit_dir }}/{{ name }}
{%- endfor %}
{%- if units %}

webapp-cron-systemd-reloaded-after-units-removed:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
{%-   for name in units %}
      - file: webapp-cron-{{ name }}-unit-file-absent
{%-   endfor %}
{%- endif %}

{%- for path in [cron.command_dir, cron.auth_file, cron.wrapper] %}

webapp-cron-{{ path }}-absent:
  file.absent:
    - name: {{ path }}
{%- endfor %}
