{%- from 'haproxy/map.jinja' import haproxy with context %}

haproxy-service-dead:
  service.dead:
    - name: {{ haproxy.service }}
    - enable: False

haproxy-package-removed:
  pkg.purged:
    - name: {{ haproxy.package }}
    - require:
      - service: haproxy-service-dead

haproxy-lemp-ha-files-absent:
  file.absent:
    - names:
      - {{ haproxy.tls_dir }}
      - /etc/sysctl.d/60-lemp-ha-nonlocal-bind.conf
