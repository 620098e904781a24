{#- Undo zabbix.server: services stopped, packages and the files Salt
    wrote removed. The database (/var/lib/mysql) stays: history is data. #}
{%- from 'zabbix/map.jinja' import zabbix with context %}
{%- set fe = zabbix.server.frontend %}

zabbix-server-service-dead:
  service.dead:
    - name: {{ zabbix.server.service }}
    - enable: False

zabbix-server-packages-removed:
  pkg.removed:
    - pkgs: {{ (zabbix.server.packages + fe.packages) | json }}
    - require:
      - service: zabbix-server-service-dead

zabbix-server-lemp-ha-files-absent:
  file.absent:
    - names:
      - {{ zabbix.server.config }}
      - {{ fe.config }}
      - {{ fe.site }}
      - {{ fe.pool }}
      - {{ zabbix.server.ca_file }}
      - {{ zabbix.server.database.config }}
      - /etc/exim4/update-exim4.conf.conf
    - require:
      - pkg: zabbix-server-packages-removed
