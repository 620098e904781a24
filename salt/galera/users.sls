{#- Cluster accounts: the SST user (mariabackup on the donor), the health
    check user, and the backup accounts (mariabackup on the backup node, the
    binlog archiver on arb1: docs/backups.md). Galera replicates accounts, so they are created on whichever
    node is Synced; on a node that is not, the states skip (see
    _states/galera.py) and the orchestration applies this again. #}
{%- from 'galera/map.jinja' import galera with context %}

include:
  - galera.package

galera-sst-user-present:
  galera.user_present:
    - name: {{ galera.sst.user }}
    - host: localhost
    - password: {{ salt['lemp_secret.require']('galera:sst_password') | json }}
    - grants:
        '*.*': {{ galera.sst.privileges | json }}
    - require:
      - pkg: galera-packages-installed

{#- Authenticated by unix_socket as the OS user of the same name; reading
    SHOW STATUS / VARIABLES needs no privilege beyond USAGE. #}
galera-healthcheck-db-user-present:
  galera.user_present:
    - name: {{ galera.healthcheck.user }}
    - host: localhost
    - unix_socket: True
    - grants: {}
    - require:
      - pkg: galera-packages-installed

{#- mariabackup of a backup to arb1 (galera.backup_source runs it, as root,
    with this account's password from a root-only option file). #}
galera-backup-user-present:
  galera.user_present:
    - name: {{ galera.backup.user }}
    - host: localhost
    - password: {{ salt['lemp_secret.require']('backup:db_password') | json }}
    - grants:
        '*.*': {{ galera.backup.privileges | json }}
    - require:
      - pkg: galera-packages-installed

{#- The binlog archiver on arb1 reads binlogs through the DB endpoint, so the
    server sees a load balancer's address: the subnet pattern, as the app's
    account. #}
galera-binlog-replication-user-present:
  galera.user_present:
    - name: {{ galera.replication.user }}
    - host: {{ galera.subnet_hosts | json }}
    - password: {{ salt['lemp_secret.require']('backup:replication_password') | json }}
    - grants:
        '*.*': {{ galera.replication.privileges | json }}
    - require:
      - pkg: galera-packages-installed

{#- Zabbix agent 2's account (zabbix templates "MySQL by Zabbix agent 2" and
    "lemp-ha Galera node"): SHOW GLOBAL STATUS needs USAGE only. #}
galera-zabbix-agent-db-user-present:
  galera.user_present:
    - name: {{ galera.zabbix_agent.user }}
    - host: localhost
    - unix_socket: True
    - grants: {}
    - require:
      - pkg: galera-packages-installed
