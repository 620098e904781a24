{#- Replication's login (user replication: masteruser/masterauth), on every
    Redis node. Its own file, included by lemp-ha.conf and outside the files
    whose change restarts Redis (redis-server-runs-its-current-settings):
    orch.rotate_secret applies this alone to hand the new password to every
    node without a restart (docs/secrets.md, redis_replication). init.sls
    includes it and orders it after the package. #}
{%- from 'redis/map.jinja' import redis, secret, previous with context %}
include:
  - redis.acl

{#- Read at the next start; redis.conf, when Sentinel's CONFIG REWRITE has
    copied masterauth into it, overrides it: the next state keeps both in step. #}
redis-replication-settings-file-managed:
  file.managed:
    - name: {{ redis.replication_file }}
    - user: redis
    - group: redis
    - mode: '0640'
    - show_changes: False
    - contents: |
        # Written by Salt (salt/redis/replication.sls); applied live when it changes.
        masteruser replication
        masterauth {{ secret('replication') }}

{#- A changed password reaches the running Redis with CONFIG SET (no
    restart; a replica's link stays up, the new password serves its next
    connection) and, when redis.conf holds another masterauth, CONFIG
    REWRITE (what Sentinel does at each failover). Compared with what Redis
    answers, so a failed run is made good by the next (_states/lemp_redis.py). #}
redis-replication-password-applied-live:
  lemp_redis.replication_auth_applied:
    - name: {{ redis.replication_file }}
    - port: {{ redis.port | int }}
    - user: {{ redis.acl.admin_user }}
    - password: {{ secret(redis.acl.admin_user) | json }}
    - previous_password: {{ previous(redis.acl.admin_user) | json }}
    - masteruser: replication
    - masterauth: {{ secret('replication') | json }}
    - require:
      - file: redis-replication-settings-file-managed
      {#- the running Redis knows the admin user and the replication user's passwords #}
      - lemp_redis: redis-acl-users-loaded-without-restart
