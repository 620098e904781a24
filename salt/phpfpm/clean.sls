{%- from 'phpfpm/map.jinja' import phpfpm with context %}

phpfpm-service-dead:
  service.dead:
    - name: {{ phpfpm.service }}
    - enable: False

phpfpm-packages-removed:
  pkg.removed:
    - pkgs: {{ phpfpm.packages | json }}
    - require:
      - service: phpfpm-service-dead

phpfpm-lemp-ha-files-absent:
  file.absent:
    - names:
      - /etc/php/{{ phpfpm.version }}/fpm/pool.d/{{ phpfpm.pool.name }}.conf
      - /etc/php/{{ phpfpm.version }}/fpm/pool.d/{{ phpfpm.health_pool.name }}.conf
      - /etc/php/{{ phpfpm.version }}/fpm/conf.d/90-lemp-ha-opcache.ini
      - /etc/php/{{ phpfpm.version }}/fpm/conf.d/90-lemp-ha-sessions.ini
      - {{ phpfpm.sessions.handler_file }}
      - /etc/php/{{ phpfpm.version }}/fpm/conf.d/{{ phpfpm.app_ini_file }}
      - /etc/php/{{ phpfpm.version }}/cli/conf.d/{{ phpfpm.app_ini_file }}
      - {{ phpfpm.pool.tmp_dir }}
      - /etc/tmpfiles.d/lemp-ha-php.conf
    - require:
      - pkg: phpfpm-packages-removed
