{#- Undo galera: stop and remove the data node. DESTROYS THE NODE'S DATA
    (/var/lib/mysql is purged with the packages). Run one node at a time,
    only on a node the cluster can lose. #}
{%- from 'galera/map.jinja' import galera with context %}

galera-healthcheck-service-dead:
  service.dead:
    - name: galera-health
    - enable: False

galera-healthcheck-files-absent:
  file.absent:
    - names:
      - /etc/systemd/system/galera-health.service
      - {{ galera.healthcheck.install_dir }}
    - require:
      - service: galera-healthcheck-service-dead

galera-healthcheck-system-user-absent:
  user.absent:
    - name: {{ galera.healthcheck.user }}
    - require:
      - service: galera-healthcheck-service-dead

galera-mariadb-service-dead:
  service.dead:
    - name: {{ galera.service }}
    - enable: False

galera-packages-purged:
  pkg.purged:
    - pkgs: {{ galera.packages | reject('equalto', 'python3') | list | json }}
    - require:
      - service: galera-mariadb-service-dead

galera-config-and-data-absent:
  file.absent:
    - names:
      - {{ galera.config_file }}
      - {{ galera.ssl_dir }}
      - /var/lib/mysql
    - require:
      - pkg: galera-packages-purged

{#- The backup source (galera.backup_source): arb1 can no longer log in. #}
galera-backup-source-files-absent:
  file.absent:
    - names:
      - /etc/sudoers.d/lemp-backup-stream
      - {{ galera.backup.command }}
      - {{ galera.backup.config_dir }}

galera-backup-source-os-user-absent:
  user.absent:
    - name: {{ galera.backup.os_user }}
    - purge: True
