{%- from 'phpfpm/map.jinja' import phpfpm with context %}
include:
  - phpfpm.config

{#- Starts and enables PHP-FPM; no `watch` (lost when the run that wrote a
    file fails before it, issue #9): the next state reloads on content. #}
phpfpm-service-running:
  service.running:
    - name: {{ phpfpm.service }}
    - enable: True
    - require:
      - file: phpfpm-default-www-pool-absent
      - file: phpfpm-{{ phpfpm.pool.name }}-pool-file-managed
      - file: phpfpm-{{ phpfpm.health_pool.name }}-pool-file-managed
      - file: phpfpm-opcache-settings-file-managed
      - file: phpfpm-session-settings-file-managed
      - file: phpfpm-app-fpm-ini-file-managed

phpfpm-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ phpfpm.service }}
    - paths: {{ phpfpm.loaded.paths | json }}
    - verify_cmd: {{ phpfpm.loaded.verify_cmd | json }}
    - action: {{ phpfpm.loaded.action }}
    - require:
      - service: phpfpm-service-running
