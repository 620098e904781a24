{#- Enabled so that a rebooted node rejoins the cluster by itself (IST).
    Deliberately not `service.running`: on a first deploy a start here would
    make every node try to join a cluster that does not exist yet, and it
    must never become `galera_new_cluster`. The orchestration starts the
    nodes in order (_runners/lemp_galera.py). No `watch`: see config.sls. #}
{%- from 'galera/map.jinja' import galera with context %}

include:
  - galera.package

galera-mariadb-service-enabled-at-boot:
  service.enabled:
    - name: {{ galera.service }}
    - require:
      - pkg: galera-packages-installed
