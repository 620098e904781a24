{#- The watchdog's script, its configuration (computed by
    _modules/lemp_zabbix_watchdog.py from the topology), its systemd units,
    and exim4 for its mail: local delivery to /var/mail/<mailbox> here, or
    a smarthost in production. #}
{%- from 'zabbix/map.jinja' import zabbix, topology, fqdn with context %}
{%- set wd = zabbix.watchdog %}
{%- set config = salt['lemp_zabbix_watchdog.watchdog_config'](topology, wd, zabbix.server.settings.ListenPort) %}
include:
  - zabbix.watchdog.package

{#- It needs no privilege: it talks TCP and SMTP on localhost. #}
zabbix-watchdog-user-present:
  user.present:
    - name: {{ wd.user }}
    - system: True
    - createhome: False
    - home: {{ wd.state_dir }}
    - shell: /usr/sbin/nologin

zabbix-watchdog-mailbox-user-present:
  user.present:
    - name: {{ wd.mail.mailbox }}
    - system: True
    # exim's mail_spool transport changes into the recipient's home first:
    # /nonexistent defers every mail (seen on mon1 in the lab)
    - createhome: True
    - home: /var/lib/{{ wd.mail.mailbox }}
    - shell: /usr/sbin/nologin

zabbix-watchdog-script-file-managed:
  file.managed:
    - name: {{ wd.script }}
    - source: salt://zabbix/watchdog/files/lemp-zabbix-watchdog.py
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True

zabbix-watchdog-config-file-managed:
  file.managed:
    - name: {{ wd.config }}
    - contents: {{ config | json | json }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: True

zabbix-watchdog-service-unit-file-managed:
  file.managed:
    - name: {{ wd.unit_dir }}/{{ wd.unit }}.service
    - contents: |
        # Written by Salt (salt/zabbix/watchdog/config.sls).
        [Unit]
        Description=lemp-ha: is the Zabbix server alive and processing? (mails on failure)
        After=network-online.target exim4.service

        [Service]
        Type=oneshot
        User={{ wd.user }}
        Group={{ wd.user }}
        StateDirectory={{ wd.state_dir | replace('/var/lib/', '') }}
        ExecStart=/usr/bin/python3 {{ wd.script }} --config {{ wd.config }}
        TimeoutStartSec={{ wd.interval }}
        # No new privileges; namespace hardening (ProtectSystem=...) fails in
        # the lab's LXC containers (see salt/galera/files/galera-health.service.jinja).
        NoNewPrivileges=yes
    - user: root
    - group: root
    - mode: '0644'

zabbix-watchdog-timer-unit-file-managed:
  file.managed:
    - name: {{ wd.unit_dir }}/{{ wd.unit }}.timer
    - contents: |
        # Written by Salt (salt/zabbix/watchdog/config.sls).
        [Unit]
        Description=lemp-ha: check the Zabbix server every {{ wd.interval }} s

        [Timer]
        OnBootSec={{ wd.interval }}
        OnUnitActiveSec={{ wd.interval }}
        AccuracySec=1s

        [Install]
        WantedBy=timers.target
    - user: root
    - group: root
    - mode: '0644'

zabbix-watchdog-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: zabbix-watchdog-service-unit-file-managed
      - file: zabbix-watchdog-timer-unit-file-managed

zabbix-watchdog-exim4-config-file-managed:
  file.managed:
    - name: /etc/exim4/update-exim4.conf.conf
    - contents: |
        # Written by Salt (salt/zabbix/watchdog/config.sls).
        dc_eximconfig_configtype='{{ 'smarthost' if wd.mail.smarthost else 'local' }}'
        dc_other_hostnames='{{ fqdn }}; {{ grains['id'] }}'
        dc_local_interfaces='127.0.0.1 ; ::1'
        dc_readhost=''
        dc_relay_domains=''
        dc_minimaldns='false'
        dc_relay_nets=''
        dc_smarthost='{{ wd.mail.smarthost }}'
        CFILEMODE='644'
        dc_use_split_config='false'
        dc_hide_mailname=''
        dc_mailname_in_oh='true'
        dc_localdelivery='mail_spool'
    - require:
      - pkg: zabbix-watchdog-mail-packages-installed

zabbix-watchdog-exim4-config-generated:
  cmd.run:
    - name: update-exim4.conf
    - onchanges:
      - file: zabbix-watchdog-exim4-config-file-managed
