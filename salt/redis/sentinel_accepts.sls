{#- Which passwords a running Sentinel accepts (its default user): the
    current one and, while orch.rotate_secret rotates sentinel_auth, the
    previous one. Applied live (ACL SETUSER, then SENTINEL FLUSHCONFIG so
    that its file says the same): no restart, its links to the other
    Sentinels stay up. orch.rotate_secret applies this alone on every
    Sentinel: "accept the old or the new" before any Sentinel logs in to its
    peers with the new one (redis.sentinel, sentinel-pass), and "only the
    new" at the end, which leaves sentinel.conf with only the new hash.
    redis.sentinel includes it, after the password it requires. #}
{%- from 'redis/map.jinja' import redis with context %}

redis-sentinel-accepts-its-current-passwords-live:
  lemp_redis.sentinel_accepts_passwords:
    - name: /etc/redis/sentinel.conf
    - port: {{ redis.sentinel_port | int }}
    - password: {{ salt['lemp_secret.require'](redis.sentinel_password) | json }}
    - previous_password: {{ (salt['lemp_secret.previous'](redis.sentinel_password) or '') | json }}
