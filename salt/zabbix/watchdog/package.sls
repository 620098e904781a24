{%- from 'zabbix/map.jinja' import zabbix with context %}

{#- Its own mail path: exim4 on this machine, not mon1's. #}
zabbix-watchdog-mail-packages-installed:
  pkg.installed:
    - pkgs: {{ zabbix.watchdog.mail.packages | json }}
    - install_recommends: False
