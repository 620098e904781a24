{#- Staff access through a directory (issue #10, item 5). Zabbix 6.0 checks
    directory users' passwords against LDAP but does not create them (JIT
    provisioning came in 6.4), so a sync (_modules/lemp_zabbix_ldap.py) makes
    the Zabbix users of the directory's groups: at deploy here, then every
    minute from a systemd timer, and on demand with
    `salt mon1 lemp_zabbix_ldap.sync`. Nothing here unless pillar
    zabbix:lookup:ldap:enabled (or lab_directory) is on. Admin and the other
    local users stay internal: the default authentication stays internal and
    only the login group's frontend access is LDAP. #}
{%- from 'zabbix/map.jinja' import zabbix with context %}
{%- set ldap = salt['lemp_zabbix_ldap.settings']() %}
{%- if ldap.get('enabled') %}
{%- do salt['lemp_secret.require']('zabbix:ldap:bind_password') %}
{%- set sync = zabbix.server.ldap_sync %}
include:
  - zabbix.server.api
{%- if ldap.lab_directory %}
  - openldap
{%- endif %}

zabbix-ldap-login-and-disabled-user-groups-present:
  lemp_zabbix_ldap.user_groups_present:
    - require:
      - lemp_zabbix: zabbix-api-user-groups-present

zabbix-ldap-authentication-configured:
  lemp_zabbix_ldap.authentication_configured:
    - require:
      - lemp_zabbix: zabbix-api-settings-valid-before-any-change
{%- if ldap.lab_directory %}
      - lemp_zabbix_ldap: openldap-lab-directory-seeded-from-pillar
{%- endif %}

zabbix-ldap-users-synced-from-directory-at-deploy:
  lemp_zabbix_ldap.synced:
    - require:
      - lemp_zabbix_ldap: zabbix-ldap-login-and-disabled-user-groups-present
      - lemp_zabbix_ldap: zabbix-ldap-authentication-configured

zabbix-ldap-sync-service-unit-file-managed:
  file.managed:
    - name: {{ sync.unit_dir }}/{{ sync.unit }}.service
    - source: salt://zabbix/server/files/ldap/lemp-zabbix-ldap-sync.service
    - user: root
    - group: root
    - mode: '0644'

zabbix-ldap-sync-timer-unit-file-managed:
  file.managed:
    - name: {{ sync.unit_dir }}/{{ sync.unit }}.timer
    - source: salt://zabbix/server/files/ldap/lemp-zabbix-ldap-sync.timer.jinja
    - template: jinja
    - context:
        schedule: {{ sync.schedule | json }}
    - user: root
    - group: root
    - mode: '0644'

zabbix-ldap-sync-systemd-reloaded-after-unit-changes:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: zabbix-ldap-sync-service-unit-file-managed
      - file: zabbix-ldap-sync-timer-unit-file-managed

{#- After the first sync, so the timer starts from a synced state. #}
zabbix-ldap-sync-timer-running:
  service.running:
    - name: {{ sync.unit }}.timer
    - enable: True
    - require:
      - cmd: zabbix-ldap-sync-systemd-reloaded-after-unit-changes
      - lemp_zabbix_ldap: zabbix-ldap-users-synced-from-directory-at-deploy
    - watch:
      - file: zabbix-ldap-sync-timer-unit-file-managed
{%- endif %}
