{#- zabbix_server.conf from defaults.yaml + pillar zabbix:lookup:server:settings;
    the database password is a generated secret, so the file is root:zabbix 0640. #}
{%- from 'zabbix/map.jinja' import zabbix, topology with context %}
{%- set db = zabbix.server.database %}
{#- watchdog: its machines may read the server's statistics (StatsAllowedIP) #}
{%- set settings = salt['lemp_zabbix_watchdog.server_settings'](zabbix.server.settings, topology, zabbix.watchdog.role) %}
{%- set password = salt['lemp_secret.require']('zabbix:server:db_password') %}
include:
  - zabbix.server.package

zabbix-server-config-file-managed:
  file.managed:
    - name: {{ zabbix.server.config }}
    - source: salt://zabbix/server/files/zabbix_server.conf.j2
    - template: jinja
    - user: root
    - group: zabbix
    - mode: '0640'
    - show_changes: False
    - context:
        db: {{ db | json }}
        db_password: {{ password | json }}
        settings: {{ settings | json }}
    - require:
      - pkg: zabbix-server-packages-installed
