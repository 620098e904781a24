{%- from 'nginx/map.jinja' import nginx with context %}
include:
  - nginx.config

nginx-configuration-is-valid:
  cmd.run:
    - name: nginx -t
    - onchanges:
      - file: nginx-app-site-file-managed
      - file: nginx-tls-certificate-file-managed
      - file: nginx-tls-key-file-managed
      - file: nginx-default-site-absent

nginx-service-running:
  service.running:
    - name: {{ nginx.service }}
    - enable: True
    - reload: True
    - require:
      - cmd: nginx-configuration-is-valid
    - watch:
      - file: nginx-app-site-file-managed
      - file: nginx-tls-certificate-file-managed
      - file: nginx-tls-key-file-managed
      - file: nginx-default-site-absent

{#- The mine entry (pillar mine_functions) is published by the orchestrations
    (orch.site, the enrolment reactor) once the node serves, not here: a
    mine.update state would report a change on every run. #}
