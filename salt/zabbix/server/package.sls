{%- from 'zabbix/map.jinja' import zabbix with context %}

{#- No recommends: zabbix-server-mysql recommends snmpd, nmap and a MySQL
    server of Debian's choice; we install what we run. #}
zabbix-server-database-packages-installed:
  pkg.installed:
    - pkgs: {{ zabbix.server.database.packages | json }}
    - install_recommends: False

zabbix-server-packages-installed:
  pkg.installed:
    - pkgs: {{ zabbix.server.packages | json }}
    - install_recommends: False
    - require:
      - pkg: zabbix-server-database-packages-installed

{#- The package lets the zabbix user run `nmap -O` as root (sudoers): we do
    no OS detection, so the server keeps no root path. #}
zabbix-server-no-root-nmap-sudoers-absent:
  file.absent:
    - name: /etc/sudoers.d/zabbix
    - require:
      - pkg: zabbix-server-packages-installed
