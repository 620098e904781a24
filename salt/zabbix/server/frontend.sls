{#- The web frontend on nginx + PHP-FPM over HTTPS, with mon1's certificate
    from the lab CA (pillar tls:cert / tls:key); zabbix.conf.php written by
    Salt, so the setup wizard never runs. Its own pool: the frontend's PHP
    settings are Zabbix's, not the app's. #}
{%- from 'zabbix/map.jinja' import zabbix, fqdn with context %}
{%- from 'phpfpm/map.jinja' import phpfpm with context %}
{%- set fe = zabbix.server.frontend %}
{%- set db = zabbix.server.database %}
{%- set cert = salt['lemp_secret.require']('tls:cert') %}
{%- set key = salt['lemp_secret.require']('tls:key') %}
{%- set ca_cert = salt['lemp_secret.require']('tls:ca_cert') %}
{%- set password = salt['lemp_secret.require']('zabbix:server:db_password') %}
include:
  - zabbix.server.package

zabbix-frontend-web-packages-installed:
  pkg.installed:
    - pkgs: {{ fe.web_packages | json }}
    - install_recommends: False

zabbix-frontend-packages-installed:
  pkg.installed:
    - pkgs: {{ fe.packages | json }}
    - install_recommends: False
    - require:
      - pkg: zabbix-frontend-web-packages-installed

{#- The frontend's language needs its system locale: without it every page
    carries "Locale for language en_US is not found" (seen on the lab's
    dashboard screenshot; the box has only C and C.utf8). #}
zabbix-frontend-locale-package-installed:
  pkg.installed:
    - name: locales
    - install_recommends: False

zabbix-frontend-locale-generated:
  locale.present:
    - name: {{ fe.locale }}
    - require:
      - pkg: zabbix-frontend-locale-package-installed
    - require_in:
      - pkg: zabbix-frontend-packages-installed

zabbix-frontend-config-file-managed:
  file.managed:
    - name: {{ fe.config }}
    - source: salt://zabbix/server/files/zabbix.conf.php.j2
    - template: jinja
    - user: root
    - group: www-data
    - mode: '0640'
    - show_changes: False
    - context:
        db: {{ db | json }}
        db_password: {{ password | json }}
        server_name: {{ fqdn | json }}
    - require:
      - pkg: zabbix-frontend-packages-installed

zabbix-frontend-php-fpm-pool-file-managed:
  file.managed:
    - name: {{ fe.pool }}
    - source: salt://zabbix/server/files/php-fpm-pool.conf.j2
    - template: jinja
    - context:
        socket: {{ fe.socket | json }}
        timezone: {{ fe.timezone | json }}
    - require:
      - pkg: zabbix-frontend-web-packages-installed

zabbix-frontend-php-fpm-default-pool-absent:
  file.absent:
    - name: /etc/php/{{ phpfpm.version }}/fpm/pool.d/www.conf
    - require:
      - pkg: zabbix-frontend-web-packages-installed

zabbix-frontend-tls-directory-present:
  file.directory:
    - name: {{ fe.tls_dir }}
    - mode: '0700'
    - require:
      - pkg: zabbix-frontend-web-packages-installed

zabbix-frontend-tls-certificate-file-managed:
  file.managed:
    - name: {{ fe.tls_dir }}/cert.pem
    - contents: {{ cert | json }}
    - mode: '0644'
    - require:
      - file: zabbix-frontend-tls-directory-present

zabbix-frontend-tls-key-file-managed:
  file.managed:
    - name: {{ fe.tls_dir }}/key.pem
    - contents: {{ key | json }}
    - mode: '0600'
    - show_changes: False
    - require:
      - file: zabbix-frontend-tls-directory-present

{#- The API client on mon1 (lemp_zabbix) checks the frontend's certificate
    against the lab CA, as the tests do. #}
zabbix-api-ca-certificate-file-managed:
  file.managed:
    - name: {{ zabbix.server.ca_file }}
    - contents: {{ ca_cert | json }}
    - makedirs: True
    - mode: '0644'

zabbix-frontend-nginx-default-site-absent:
  file.absent:
    - name: /etc/nginx/sites-enabled/default
    - require:
      - pkg: zabbix-frontend-web-packages-installed

zabbix-frontend-nginx-site-file-managed:
  file.managed:
    - name: {{ fe.site }}
    - source: salt://zabbix/server/files/nginx-site.conf.j2
    - template: jinja
    - context:
        docroot: {{ fe.docroot | json }}
        socket: {{ fe.socket | json }}
        tls_dir: {{ fe.tls_dir | json }}
        server_name: {{ fqdn | json }}
    - require:
      - file: zabbix-frontend-tls-certificate-file-managed
      - file: zabbix-frontend-tls-key-file-managed

zabbix-frontend-php-fpm-service-running:
  service.running:
    - name: {{ phpfpm.service }}
    - enable: True
    - require:
      - file: zabbix-frontend-php-fpm-pool-file-managed
      - file: zabbix-frontend-php-fpm-default-pool-absent
      - file: zabbix-frontend-config-file-managed

zabbix-frontend-php-fpm-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ phpfpm.service }}
    - paths: {{ phpfpm.loaded.paths | json }}
    - verify_cmd: {{ phpfpm.loaded.verify_cmd | json }}
    - action: reload
    - require:
      - service: zabbix-frontend-php-fpm-service-running

zabbix-frontend-nginx-service-running:
  service.running:
    - name: nginx
    - enable: True
    - require:
      - file: zabbix-frontend-nginx-site-file-managed
      - file: zabbix-frontend-nginx-default-site-absent
      - service: zabbix-frontend-php-fpm-service-running

zabbix-frontend-nginx-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: nginx
    - paths: [/etc/nginx]
    - verify_cmd: /usr/sbin/nginx -t
    - action: reload
    - require:
      - service: zabbix-frontend-nginx-service-running
