{%- from 'keepalived/map.jinja' import keepalived with context %}

keepalived-service-dead:
  service.dead:
    - name: {{ keepalived.service }}
    - enable: False

keepalived-package-purged:
  pkg.purged:
    - name: {{ keepalived.package }}
    - require:
      - service: keepalived-service-dead

{#- haproxy's drop-in goes too: without keepalived nobody reads the file. #}
keepalived-drop-ins-absent:
  file.absent:
    - names:
      - /etc/systemd/system/{{ keepalived.service }}.service.d/{{ keepalived.dropin }}
      - /etc/systemd/system/{{ keepalived.haproxy_track.service }}.service.d/{{ keepalived.haproxy_track.dropin }}
      - {{ keepalived.haproxy_track.dir }}
    - require:
      - service: keepalived-service-dead

keepalived-clean-systemd-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: keepalived-drop-ins-absent
