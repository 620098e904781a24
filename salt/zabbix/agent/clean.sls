{%- from 'zabbix/map.jinja' import zabbix with context %}

zabbix-agent-service-dead:
  service.dead:
    - name: {{ zabbix.agent.service }}
    - enable: False

zabbix-agent-package-removed:
  pkg.purged:
    - name: {{ zabbix.agent.package }}
    - require:
      - service: zabbix-agent-service-dead

zabbix-agent-psk-file-absent:
  file.absent:
    - name: {{ zabbix.agent.psk_file }}

zabbix-agent-userparameters-file-absent:
  file.absent:
    - name: {{ zabbix.agent.user_parameters_file }}
