{%- from 'phpfpm/map.jinja' import phpfpm with context %}
include:
  - phpfpm.config

phpfpm-service-running:
  service.running:
    - name: {{ phpfpm.service }}
    - enable: True
    - reload: True
    - watch:
      - file: phpfpm-default-www-pool-absent
      - file: phpfpm-{{ phpfpm.pool.name }}-pool-file-managed
      - file: phpfpm-opcache-settings-file-managed
      - file: phpfpm-session-settings-file-managed
