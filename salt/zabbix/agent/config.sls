{%- from 'zabbix/map.jinja' import zabbix, monitors, me with context %}
{%- set agent = zabbix.agent %}
{%- set psk = salt['lemp_secret.require']('zabbix:agent:psk') %}
include:
  - zabbix.agent.package

{#- The PSK is a secret: readable by the agent's user only. #}
zabbix-agent-psk-file-managed:
  file.managed:
    - name: {{ agent.psk_file }}
    - contents: {{ psk | json }}
    - user: zabbix
    - group: zabbix
    - mode: '0400'
    - show_changes: False
    - require:
      - pkg: zabbix-agent-package-installed

zabbix-agent-config-file-managed:
  file.managed:
    - name: {{ agent.config }}
    - source: salt://zabbix/agent/files/zabbix_agent2.conf.j2
    - template: jinja
    - mode: '0644'
    - context:
        hostname: {{ grains['id'] | json }}
        servers: {{ monitors | map(attribute='address') | list | json }}
        psk_file: {{ agent.psk_file | json }}
        host_metadata: {{ salt['lemp_zabbix.host_metadata'](me.roles) | json }}
        settings: {{ agent.settings | json }}
    - require:
      - pkg: zabbix-agent-package-installed
