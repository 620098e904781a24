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
  lookup:
    archive:
      # The lab's rotation, shorter than the defaults (10 s, 60 s): the lab's
      # writes come in bursts with quiet gaps (tests/lab/test_backups.py), and
      # each backup, PITR `until` and drill waits for the archive to hold the
      # burst's tail that mariadb-binlog keeps in its buffer until a rotation
      # (docs/backups.md "The binlog archive"). With 60 s between rotations a
      # backup right after another waited most of a minute. 4 s is the floor
      # (two polls, lemp_backup_job.check_archive_settings); 10 s stays above
      # the data node's own 5 s refusal (lemp-backup-stream rotate-binlog).
      # A production writer is rarely quiet and a binlog file a minute is
      # enough there: the defaults stay.
      rotate_after_seconds: 4
      rotate_min_interval_seconds: 10
