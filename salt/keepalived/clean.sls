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
