{#- Cluster accounts: the SST user (mariabackup on the donor) and the health
    check user. Galera replicates accounts, so they are created on whichever
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
