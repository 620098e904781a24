{#- HTTP health check for HAProxy (`check port 9200`): 200 only when this
    node is Synced, ready, writable and not desynced. Its MariaDB account
    (unix_socket, USAGE only) is in galera.users. Restarting the checker is
    harmless, so it is watched. #}
{%- from 'galera/map.jinja' import galera with context %}
{%- set hc = galera.healthcheck %}

include:
  - galera.package

galera-healthcheck-system-user-present:
  user.present:
    - name: {{ hc.user }}
    - system: True
    - usergroup: True
    - home: /nonexistent
    - createhome: False
    - shell: /usr/sbin/nologin

galera-healthcheck-script-managed:
  file.managed:
    - name: {{ hc.install_dir }}/galera-health.py
    - source: salt://galera/files/galera-health.py
    - makedirs: True
    - user: root
    - group: root
    - mode: '0755'

galera-healthcheck-unit-managed:
  file.managed:
    - name: /etc/systemd/system/galera-health.service
    - source: salt://galera/files/galera-health.service.jinja
    - template: jinja
    - context:
        galera: {{ {'address': galera.address, 'healthcheck': hc} | json }}
    - user: root
    - group: root
    - mode: '0644'

galera-healthcheck-service-running:
  service.running:
    - name: galera-health
    - enable: True
    - require:
      - pkg: galera-packages-installed
      - user: galera-healthcheck-system-user-present
    - watch:
      - file: galera-healthcheck-script-managed
      - file: galera-healthcheck-unit-managed
