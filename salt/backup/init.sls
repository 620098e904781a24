{#- The backup store on arb1 (role backup; docs/backups.md): the tools, the
    encrypted store, timers for a daily full, hourly incrementals and
    pruning, and the binlog archiver. The data nodes' side (ssh forced
    command, accounts, GTID settings) is galera.backup_source and
    galera.users. #}
include:
  - backup.package
  - backup.config
  - backup.service
