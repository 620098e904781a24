{#- zabbix_sender on the master, for the scaling decisions (_runners/
    lemp_scale.py record: item lemp.scale.decision of the master's host).
    Debian 12 ships zabbix_sender only inside zabbix-agent, with the classic
    agent: its unit is masked first, so that it never starts beside agent2
    (same port 10050). zabbix_sender, not the zabbix_utils Sender: the host
    accepts PSK only, and zabbix_sender speaks it with the agent's own key
    file; Python 3.11's ssl has no PSK. #}
{%- from 'zabbix/map.jinja' import zabbix with context %}

zabbix-sender-classic-agent-unit-masked:
  file.symlink:
    - name: /etc/systemd/system/zabbix-agent.service
    - target: /dev/null

zabbix-sender-package-installed:
  pkg.installed:
    - name: zabbix-agent
    - require:
      - file: zabbix-sender-classic-agent-unit-masked
