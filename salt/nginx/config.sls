{#- The site: HTTPS with this machine's certificate (the load balancers
    re-encrypt to it), the app's current release, /healthz, status pages. #}
{%- from 'nginx/map.jinja' import nginx with context %}
{%- from 'webapp/map.jinja' import app, app_dir, db_host, checked with context %}
{%- from 'phpfpm/map.jinja' import phpfpm with context %}
{%- set cert = salt['lemp_secret.require']('tls:cert') %}
{%- set key = salt['lemp_secret.require']('tls:key') %}
{%- set password = salt['lemp_secret.require']('app:database:password') %}
{%- set lbs = salt['pillar.get']('topology:roles:lb:members', []) | map(attribute='address') | list %}
{%- set healthz_details_from = salt['lemp_edge.healthz_details_from'](nginx.health.details_from, lbs) %}
include:
  - nginx.package
  # the site sends /healthz to the health pool: PHP-FPM runs it first
  - phpfpm.service

nginx-tls-directory-present:
  file.directory:
    - name: {{ nginx.tls_dir }}
    - user: root
    - group: root
    - mode: '0700'
    - require:
      - pkg: nginx-packages-installed

nginx-tls-certificate-file-managed:
  file.managed:
    - name: {{ nginx.tls_dir }}/cert.pem
    - contents: {{ cert | json }}
    - mode: '0644'
    - require:
      - file: nginx-tls-directory-present

nginx-tls-key-file-managed:
  file.managed:
    - name: {{ nginx.tls_dir }}/key.pem
    - contents: {{ key | json }}
    - mode: '0600'
    - show_changes: False
    - require:
      - file: nginx-tls-directory-present

nginx-default-site-absent:
  file.absent:
    - name: /etc/nginx/sites-enabled/default

nginx-healthz-script-file-managed:
  file.managed:
    - name: {{ nginx.health.script_dir }}/healthz.php
    - source: salt://nginx/files/healthz.php
    - makedirs: True
    - mode: '0644'

nginx-healthz-settings-file-managed:
  file.serialize:
    - name: /etc/lemp-ha/healthz.json
    - makedirs: True
    - user: root
    - group: {{ phpfpm.pool.group }}
    - mode: '0640'
    - show_changes: False
    - serializer: json
    - dataset:
        db_host: {{ db_host | json }}
        db_port: {{ app.database.port | int }}
        db_name: {{ app.database.name | json }}
        db_user: {{ app.database.user | json }}
        db_password: {{ password | json }}
        db_ssl_ca: {{ app.database.ssl_ca | json }}
        db_timeout: {{ nginx.health.db_timeout | int }}
        app_dir: {{ app_dir | json }}

{#- The page itself is configuration (every highstate); whether it is shown
    is the flag of nginx.maintenance, which a highstate never touches. #}
nginx-maintenance-page-file-managed:
  file.managed:
    - name: {{ nginx.maintenance.page_dir }}/{{ nginx.maintenance.page }}
    - source: salt://nginx/files/maintenance.html
    - makedirs: True
    - mode: '0644'

nginx-app-site-file-managed:
  file.managed:
    - name: /etc/nginx/sites-enabled/{{ app.name }}.conf
    - source: salt://nginx/files/site.conf.j2
    - template: jinja
    - context:
        nginx: {{ nginx | json }}
        app_dir: {{ app_dir | json }}
        docroot: {{ app.docroot | json }}
        fpm_socket: {{ phpfpm.pool.socket | json }}
        # /healthz and /healthz/deep: their own pool (salt/phpfpm health_pool)
        health_socket: {{ phpfpm.health_pool.socket | json }}
        lb_addresses: {{ lbs | json }}
        # /healthz's details: loopback, the LBs, pillar nginx:lookup:health:details_from
        healthz_details_from: {{ healthz_details_from | json }}
        # from PHP's post_max_size when the app sets its upload sizes (app:php:ini), else nginx's
        client_max_body_size: {{ checked.client_max_body_size | json }}
        # folders PHP writes (app:shared_paths, app:writable_paths), in the
        # pillar and in every release on this node: files only
        static_urls: {{ checked.static_urls | json }}
    - require:
      - pkg: nginx-packages-installed
      - file: nginx-tls-certificate-file-managed
      - file: nginx-tls-key-file-managed
      - file: nginx-healthz-script-file-managed
      - file: nginx-healthz-settings-file-managed
      - file: nginx-maintenance-page-file-managed
      # Not before PHP-FPM runs its current pools (php-fpm -t passed, then
      # reloaded): on the upgrade that adds the health pool, a site naming
      # its socket before the pool exists would fail /healthz on every web
      # node at once. While php-fpm -t fails, the site stays as it is.
      - lemp_service: phpfpm-runs-its-current-configuration

{#- Loopback-only status pages for the Zabbix agent; in conf.d, not in
    sites-enabled (which holds only the app's site). #}
nginx-agent-status-server-file-managed:
  file.managed:
    - name: /etc/nginx/conf.d/lemp-ha-status.conf
    - source: salt://nginx/files/status.conf.j2
    - template: jinja
    - context:
        status: {{ nginx.status | json }}
        fpm_socket: {{ phpfpm.pool.socket | json }}
    - require:
      - pkg: nginx-packages-installed

{#- Only the managed site stays enabled: after an app:name change the old
    site (same default_server) goes, before nginx -t runs. #}
nginx-sites-enabled-holds-only-the-managed-site:
  file.directory:
    - name: /etc/nginx/sites-enabled
    - clean: True
    - require:
      - file: nginx-app-site-file-managed
