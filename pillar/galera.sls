# Non-secret settings of the database tier (salt/galera, salt/garbd).
# Every key: salt/galera/pillar.example. Secrets (galera:sst_password,
# app:database:password, tls:*) come from the per-machine secrets pillar.
galera:
  lookup:
    cluster_name: lemp-ha
    gcache_size: 512M
    # HAProxy's database endpoint is sized from it (pillar/lb.sls)
    max_connections: 200
    binlog:
      expire_logs_days: 7
    innodb:
      buffer_pool_size: 256M
      flush_log_at_trx_commit: 1
    healthcheck:
      port: 9200
