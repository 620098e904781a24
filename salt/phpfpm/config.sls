{%- from 'phpfpm/map.jinja' import phpfpm with context %}
{%- from 'webapp/map.jinja' import checked as webapp with context %}
{%- set etc = '/etc/php/' ~ phpfpm.version ~ '/fpm' %}
{%- if phpfpm.sessions.enabled %}
{%-   set redis_password = salt['lemp_secret.require']('sessions:redis_password') %}
{%- endif %}
include:
  - phpfpm.package

phpfpm-default-www-pool-absent:
  file.absent:
    - name: {{ etc }}/pool.d/www.conf
    - require:
      - pkg: phpfpm-packages-installed

phpfpm-{{ phpfpm.pool.name }}-pool-file-managed:
  file.managed:
    - name: {{ etc }}/pool.d/{{ phpfpm.pool.name }}.conf
    - source: salt://phpfpm/files/pool.conf.j2
    - template: jinja
    - context:
        pool: {{ phpfpm.pool | json }}
        # disable_functions, open_basedir, tmp_dir: the platform's with the app's exceptions
        limits: {{ webapp.php_limits | json }}
    - require:
      - pkg: phpfpm-packages-installed
      - file: phpfpm-{{ phpfpm.pool.name }}-temp-directory-present

{#- /healthz's own pool (nginx passes /healthz and /healthz/deep to its
    socket): HAProxy's check never waits for a busy app pool. Its limits:
    exactly what healthz.php reads (_modules/lemp_app.py health_pool_limits). #}
phpfpm-{{ phpfpm.health_pool.name }}-pool-file-managed:
  file.managed:
    - name: {{ etc }}/pool.d/{{ phpfpm.health_pool.name }}.conf
    - source: salt://phpfpm/files/health-pool.conf.j2
    - template: jinja
    - context:
        pool: {{ phpfpm.health_pool | json }}
        limits: {{ webapp.health_limits | json }}
    - require:
      - pkg: phpfpm-packages-installed

{#- The pool's temporary folder (sys_temp_dir, upload_tmp_dir), its user's
    only; systemd-tmpfiles removes what is older than a day (an upload's
    file goes at the end of its request; tempnam() files may stay). #}
phpfpm-{{ phpfpm.pool.name }}-temp-directory-present:
  file.directory:
    - name: {{ webapp.php_limits.tmp_dir }}
    - user: {{ phpfpm.pool.user }}
    - group: {{ phpfpm.pool.group }}
    - mode: '0700'
    - makedirs: True
    - require:
      - pkg: phpfpm-packages-installed

phpfpm-{{ phpfpm.pool.name }}-temp-directory-cleanup-file-managed:
  file.managed:
    - name: /etc/tmpfiles.d/lemp-ha-php.conf
    - contents: |
        # Written by Salt (salt/phpfpm): the PHP-FPM pool's temporary folder.
        d {{ webapp.php_limits.tmp_dir }} 0700 {{ phpfpm.pool.user }} {{ phpfpm.pool.group }} 1d
    - require:
      - file: phpfpm-{{ phpfpm.pool.name }}-temp-directory-present

phpfpm-opcache-settings-file-managed:
  file.managed:
    - name: {{ etc }}/conf.d/90-lemp-ha-opcache.ini
    - contents: |
        ; Written by Salt (salt/phpfpm).
        opcache.enable=1
        opcache.memory_consumption={{ phpfpm.opcache.memory_consumption | int }}
        opcache.max_accelerated_files={{ phpfpm.opcache.max_accelerated_files | int }}
        opcache.validate_timestamps={{ phpfpm.opcache.validate_timestamps | int }}
        opcache.revalidate_freq={{ phpfpm.opcache.revalidate_freq | int }}
        expose_php=Off
    - require:
      - pkg: phpfpm-packages-installed

phpfpm-session-handler-file-managed:
{%- if phpfpm.sessions.enabled %}
  file.managed:
    - name: {{ phpfpm.sessions.handler_file }}
    - source: salt://phpfpm/files/session-handler.php
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'
{%- else %}
  file.absent:
    - name: {{ phpfpm.sessions.handler_file }}
{%- endif %}

phpfpm-session-settings-file-managed:
{%- if phpfpm.sessions.enabled %}
  file.managed:
    - name: {{ etc }}/conf.d/90-lemp-ha-sessions.ini
    - user: root
    - group: root
    - mode: '0600'
    - show_changes: False
    - contents: |
        ; Written by Salt (salt/phpfpm). Sessions in Redis via the internal endpoint: docs/sessions.md
        session.save_handler=redis
        session.save_path="tcp://{{ salt['pillar.get']('topology:network:internal_vip') }}:{{ phpfpm.sessions.port | int }}?auth[]={{ phpfpm.sessions.user | urlencode }}&auth[]={{ redis_password | urlencode }}&timeout={{ phpfpm.sessions.timeout }}&read_timeout={{ phpfpm.sessions.read_timeout }}&persistent={{ phpfpm.sessions.persistent | int }}&prefix=PHPREDIS_SESSION:"
        session.cookie_secure=1
        session.cookie_httponly=1
        session.cookie_samesite=Lax
        session.use_strict_mode=1
        session.gc_maxlifetime=3600
        ; strict mode without a new id when Redis does not answer (docs/sessions.md)
        auto_prepend_file={{ phpfpm.sessions.handler_file }}
{%- else %}
  file.absent:
    - name: {{ etc }}/conf.d/90-lemp-ha-sessions.ini
{%- endif %}
    - require:
      - pkg: phpfpm-packages-installed
{%- if phpfpm.sessions.enabled %}
      - file: phpfpm-session-handler-file-managed
{%- endif %}
{%- for sapi in ('fpm', 'cli') %}

{#- The app's php.ini settings (pillar app:php:ini), the same for the pool
    and for the CLI its migrations and cron jobs run with. #}
phpfpm-app-{{ sapi }}-ini-file-managed:
{%- if webapp.php_ini %}
  file.managed:
    - name: /etc/php/{{ phpfpm.version }}/{{ sapi }}/conf.d/{{ phpfpm.app_ini_file }}
    - contents: {{ webapp.php_ini | json }}
    - user: root
    - group: root
    - mode: '0644'
{%- else %}
  file.absent:
    - name: /etc/php/{{ phpfpm.version }}/{{ sapi }}/conf.d/{{ phpfpm.app_ini_file }}
{%- endif %}
    - require:
      - pkg: phpfpm-packages-installed
{%- endfor %}
