{%- from 'zabbix/map.jinja' import zabbix with context %}
include:
  - zabbix.server.database
  - zabbix.server.config

{#- Starts and enables the server once its schema is in; no `watch` (lost
    when the run that wrote a file fails before it, issue #9): the next
    state restarts it on content. #}
zabbix-server-service-running:
  service.running:
    - name: {{ zabbix.server.service }}
    - enable: True
    - require:
      - cmd: zabbix-server-schema-imported-into-empty-database
      - file: zabbix-server-config-file-managed
      - file: zabbix-server-no-root-nmap-sudoers-absent

zabbix-server-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ zabbix.server.service }}
    - paths: {{ zabbix.server.loaded.paths | json }}
    - action: {{ zabbix.server.loaded.action }}
    - require:
      - service: zabbix-server-service-running
