{%- from 'nginx/map.jinja' import nginx with context %}
{%- from 'phpfpm/map.jinja' import phpfpm with context %}
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

{#- At shutdown systemd stops units in the reverse order of After=: nginx
    first (it finishes its requests, then stops listening, so HAProxy sends
    new ones elsewhere), PHP-FPM after it. Otherwise nginx answers 502. #}
nginx-stops-before-php-fpm-at-shutdown:
  file.managed:
    - name: /etc/systemd/system/{{ nginx.service }}.service.d/lemp-ha-order.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (salt/nginx/service.sls).
        [Unit]
        After={{ phpfpm.service }}.service

nginx-systemd-units-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: nginx-stops-before-php-fpm-at-shutdown

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
