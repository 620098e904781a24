{%- from 'nginx/map.jinja' import nginx with context %}
{%- from 'webapp/map.jinja' import app with context %}

nginx-service-dead:
  service.dead:
    - name: {{ nginx.service }}
    - enable: False

nginx-packages-removed:
  pkg.removed:
    - pkgs: {{ nginx.packages | json }}
    - require:
      - service: nginx-service-dead

nginx-lemp-ha-files-absent:
  file.absent:
    - names:
      - /etc/nginx/sites-enabled/{{ app.name }}.conf
      - /etc/nginx/conf.d/lemp-ha-status.conf
      - {{ nginx.tls_dir }}
      - /etc/lemp-ha/healthz.json
      - {{ nginx.health.script_dir }}/healthz.php
      - {{ nginx.maintenance.page_dir }}
      - {{ nginx.maintenance.flag }}
