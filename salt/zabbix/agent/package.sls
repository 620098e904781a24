{%- from 'zabbix/map.jinja' import zabbix with context %}

zabbix-agent-package-installed:
  pkg.installed:
    - name: {{ zabbix.agent.package }}
    - install_recommends: False
