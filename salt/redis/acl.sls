{#- The Redis ACL users (salt/redis/defaults.yaml acl:users, built by
    _modules/lemp_redis.py), on every Redis node. Its own file so that
    orch.rotate_secret can apply it alone on the Redis nodes (a Redis
    password's "accept the old or the new" and "only the new" steps):
    redis/init.sls includes it for every other run and orders it after the
    package and the running server. #}
{%- from 'redis/map.jinja' import redis, secret, previous with context %}

{#- In their own file, not in redis.conf, which Sentinel's CONFIG REWRITE
    rewrites. Hashes only; during a rotation a user has two (the previous
    and the new password). #}
redis-acl-users-file-managed:
  file.managed:
    - name: {{ redis.acl.file }}
    - user: redis
    - group: redis
    - mode: '0640'
    - show_changes: False
    - contents: {{ salt['lemp_redis.render_acl_file'](redis.acl.users, redis.acl.legacy_password) | json }}

{#- A changed user file reaches the running Redis with ACL SETUSER per user:
    no restart, no client disconnected (ACL LOAD would drop them all).
    Recorded once applied, so a failed run is made good by the next
    (_states/lemp_redis.py). #}
redis-acl-users-loaded-without-restart:
  lemp_redis.acl_loaded:
    - name: {{ redis.acl.file }}
    - port: {{ redis.port | int }}
    - user: {{ redis.acl.admin_user }}
    - password: {{ secret(redis.acl.admin_user) | json }}
    {#- a rotation of the admin password: the running Redis knows only the previous one yet #}
    - previous_password: {{ previous(redis.acl.admin_user) | json }}
    - require:
      - file: redis-acl-users-file-managed
