{%- from 'zabbix/map.jinja' import zabbix, monitors with context %}
include:
  - zabbix.agent.config

{#- No `watch` (issue #9): the next state restarts on content. #}
zabbix-agent-service-running:
  service.running:
    - name: {{ zabbix.agent.service }}
    - enable: True
    - require:
      - file: zabbix-agent-config-file-managed
      - file: zabbix-agent-psk-file-managed

zabbix-agent-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ zabbix.agent.service }}
    - paths: [{{ zabbix.agent.config }}, {{ zabbix.agent.psk_file }}, /etc/zabbix/zabbix_agent2.d]
    - action: restart
    - require:
      - service: zabbix-agent-service-running
