{#- Undo garbd: stop it and remove the package and its files. #}
{%- from 'garbd/map.jinja' import garbd with context %}

garbd-service-dead:
  service.dead:
    - name: {{ garbd.service }}
    - enable: False

garbd-package-purged:
  pkg.purged:
    - name: {{ garbd.package }}
    - require:
      - service: garbd-service-dead

garbd-files-absent:
  file.absent:
    - names:
      - {{ garbd.config_file }}
      - {{ garbd.ssl_dir }}
      - /etc/systemd/system/{{ garbd.service }}.service.d/lemp-ha.conf
    - require:
      - pkg: garbd-package-purged

garbd-system-user-absent:
  user.absent:
    - name: {{ garbd.user }}
    - require:
      - service: garbd-service-dead
