# Non-secret settings of backups (salt/backup on arb1; salt/galera's
# backup_source on the data nodes). Every key: salt/backup/pillar.example.
# Secrets (backup:encryption_key, backup:db_password, backup:replication_password,
# backup:ssh:*) come from the per-machine secrets pillar.
backup:
  schedule:
    full: '*-*-* 01:30'
    incremental: '*-*-* *:15'
    prune: '*-*-* *:45'
    drill: '*-*-* 04:30'
  retention:
    daily_fulls: 7
    hourly_incrementals: 48
