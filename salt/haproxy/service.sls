{%- from 'haproxy/map.jinja' import haproxy with context %}
include:
  - haproxy.config

haproxy-service-running:
  service.running:
    - name: {{ haproxy.service }}
    - enable: True
    - reload: True
    - require:
      - sysctl: haproxy-may-bind-the-vip-on-the-backup
    - watch:
      - file: haproxy-config-file-managed
      - file: haproxy-vip-certificate-file-managed
      - file: haproxy-ca-certificate-file-managed
