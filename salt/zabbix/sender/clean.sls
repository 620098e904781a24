{#- Undo zabbix.sender: the package that carries zabbix_sender, then the mask. #}

zabbix-sender-package-removed:
  pkg.removed:
    - name: zabbix-agent

zabbix-sender-classic-agent-unit-mask-absent:
  file.absent:
    - name: /etc/systemd/system/zabbix-agent.service
    - require:
      - pkg: zabbix-sender-package-removed
