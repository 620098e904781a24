{#- Enabled so that a rebooted node rejoins the cluster by itself (IST).
    Deliberately not `service.running`: on a first deploy a start here would
    make every node try to join a cluster that does not exist yet, and it
    must never become `galera_new_cluster`. The orchestration starts the
    nodes in order (_runners/lemp_galera.py). No `watch`: see config.sls. #}
{%- from 'galera/map.jinja' import galera with context %}

include:
  - galera.package
  - galera.config

galera-mariadb-service-enabled-at-boot:
  service.enabled:
    - name: {{ galera.service }}
    - require:
      - pkg: galera-packages-installed

{#- A highstate never restarts a Galera node (config.sls says why), so here
    the convergence check only reports: when /etc/mysql changed after
    MariaDB started, the state says a restart is pending and how to apply
    it, with no change (a second run stays clean). Once
    orch.galera_rolling_restart has restarted the node, it started after the
    change and the next run records what it loaded. A node that is not
    running (before the orchestration forms the cluster) only gets a record:
    its start loads the files as they are; so does the standalone server
    Debian's package starts on first install (stand_in_fun): the
    orchestration replaces it by a cluster node, which loads the files as
    they are, so a fresh node has no restart pending and orch.site's first
    run leaves the record that its second run finds current. On demand:
    salt -C 'G@id:db*' lemp_service.status mariadb '["/etc/mysql"]' action=none \
        stand_in_fun=galera.is_first_install_server #}
galera-mariadb-restart-pending-is-reported:
  lemp_service.config_loaded:
    - name: {{ galera.service }}
    - paths: {{ galera.loaded_paths | json }}
    - action: none
    - stand_in_fun: galera.is_first_install_server
    - apply_with: salt-run state.orchestrate orch.galera_rolling_restart
    - require:
      - service: galera-mariadb-service-enabled-at-boot
      - file: galera-config-file-managed
      - file: galera-ssl-ca-cert-managed
      - file: galera-ssl-endpoint-cert-managed
      - file: galera-ssl-endpoint-key-managed
      - file: galera-tls-ca-bundle-managed
      - file: galera-tls-node-cert-managed
      - file: galera-tls-node-key-managed
