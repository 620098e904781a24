{#- MariaDB Galera data node (role db). What this does NOT do: start or
    bootstrap the cluster. That is the orchestration's job
    (_runners/lemp_galera.py plans it; orch.site or orch.galera.bootstrap runs it), because
    only a global view can tell a fresh cluster from a running one. #}
include:
  - galera.package
  - galera.config
  - galera.service
  - galera.users
  - galera.databases
  - galera.healthcheck
