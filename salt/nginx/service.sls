{%- from 'nginx/map.jinja' import nginx with context %}
{%- from 'phpfpm/map.jinja' import phpfpm with context %}
include:
  - nginx.config

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

{#- Starts and enables nginx; no `watch`: a reload fired by a watch is lost
    when the run that wrote the file fails before it (issue #9). The next
    state reloads instead, comparing what nginx loaded with what is on disk. #}
nginx-service-running:
  service.running:
    - name: {{ nginx.service }}
    - enable: True
    - require:
      - file: nginx-app-site-file-managed
      - file: nginx-tls-certificate-file-managed
      - file: nginx-tls-key-file-managed
      - file: nginx-default-site-absent
      - file: nginx-sites-enabled-holds-only-the-managed-site

{#- nginx -t covers every file nginx includes (also ones Salt does not
    write): when it fails, nginx keeps its previous configuration and the
    next successful run reloads. #}
nginx-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ nginx.service }}
    - paths: {{ nginx.loaded.paths | json }}
    - verify_cmd: {{ nginx.loaded.verify_cmd | json }}
    - action: {{ nginx.loaded.action }}
    - require:
      - service: nginx-service-running

{#- The mine entry (pillar mine_functions) is published by the orchestrations
    (orch.site, the enrolment reactor) once the node serves, not here: a
    mine.update state would report a change on every run. #}
