{#- Undo zabbix.watchdog: the timer stopped, its units, script, config and
    state removed, exim4 removed. The mailbox (/var/mail/<mailbox>) stays:
    it is mail. #}
{%- from 'zabbix/map.jinja' import zabbix with context %}
{%- set wd = zabbix.watchdog %}

zabbix-watchdog-timer-dead:
  service.dead:
    - name: {{ wd.unit }}.timer
    - enable: False

zabbix-watchdog-files-absent:
  file.absent:
    - names:
      - {{ wd.unit_dir }}/{{ wd.unit }}.timer
      - {{ wd.unit_dir }}/{{ wd.unit }}.service
      - {{ wd.script }}
      - {{ wd.config }}
      - {{ wd.state_dir }}
      - /etc/exim4/update-exim4.conf.conf
    - require:
      - service: zabbix-watchdog-timer-dead

zabbix-watchdog-systemd-reloaded-after-clean:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: zabbix-watchdog-files-absent

zabbix-watchdog-mail-packages-removed:
  pkg.removed:
    - pkgs: {{ zabbix.watchdog.mail.packages | json }}
    - require:
      - service: zabbix-watchdog-timer-dead

zabbix-watchdog-user-absent:
  user.absent:
    - name: {{ wd.user }}
    - require:
      - file: zabbix-watchdog-files-absent
