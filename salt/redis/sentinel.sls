{#- Redis Sentinel: watches the session Redis, promotes a replica when the
    master fails. On web and lb nodes so that a quorum survives one loss. #}
{%- from 'redis/map.jinja' import redis, redis_nodes, my_address, secret with context %}
{%- set sentinel_password = salt['lemp_secret.require'](redis.sentinel_password) %}
{#- a rotation of sentinel_auth not over yet (orch.rotate_secret): accepted too #}
{%- set sentinel_previous = salt['lemp_secret.previous'](redis.sentinel_password) or '' %}
{%- set first = redis_nodes[0] %}
include:
  - redis.sentinel_monitoring
  - redis.sentinel_accepts

{#- Sentinel's password for lemp-redis-follow and operators' redis-cli
    (REDISCLI_AUTH="$(cat FILE)"): root only. #}
redis-sentinel-password-file-managed:
  file.managed:
    - name: {{ redis.sentinel_auth_file }}
    - user: root
    - group: root
    - mode: '0600'
    - makedirs: True
    - show_changes: False
    - contents: {{ sentinel_password | json }}

redis-sentinel-package-installed:
  pkg.installed:
    - name: redis-sentinel

{#- Sentinel rewrites its file (epochs, known replicas): written once. #}
redis-sentinel-debian-config-replaced-once:
  cmd.run:
    - name: rm -f /etc/redis/sentinel.conf
    - onlyif: grep -q '^# Example sentinel.conf' /etc/redis/sentinel.conf
    - require:
      - pkg: redis-sentinel-package-installed

redis-sentinel-config-file-written-once:
  file.managed:
    - name: /etc/redis/sentinel.conf
    - user: redis
    - group: redis
    - mode: '0640'
    - replace: False
    - show_changes: False
    - contents: |
        # Written once by Salt (salt/redis); Sentinel rewrites it.
        bind {{ my_address }} 127.0.0.1
        port {{ redis.sentinel_port }}
        daemonize no
        supervised systemd
        logfile /var/log/redis/redis-sentinel.log
        sentinel monitor {{ redis.master_name }} {{ first.address }} {{ redis.port }} {{ redis.quorum }}
{%- for line in salt['lemp_redis.sentinel_auth_lines'](redis.master_name, 'sentinel', secret('sentinel'), sentinel_password, sentinel_previous) %}
        {{ line }}
{%- endfor %}
        sentinel down-after-milliseconds {{ redis.master_name }} {{ redis.down_after_ms }}
        sentinel failover-timeout {{ redis.master_name }} {{ redis.failover_timeout_ms }}
        sentinel parallel-syncs {{ redis.master_name }} 1
    - require:
      - cmd: redis-sentinel-debian-config-replaced-once

redis-sentinel-service-running:
  service.running:
    - name: redis-sentinel
    - enable: True
    - watch:
      - file: redis-sentinel-config-file-written-once

{#- No checksum of sentinel.conf: Sentinel rewrites it at runtime (epochs,
    the replicas and Sentinels it discovers), so its digest changes without
    Salt and a lemp_service.config_loaded on it would restart Sentinel after
    every failover. Salt writes it once, and what that write brings is the
    monitored master; so ask the running Sentinel instead. If the run that
    wrote the file failed before the watch above restarted Sentinel, it
    still runs Debian's example file and monitors nothing: restart it. #}
redis-sentinel-monitors-the-sessions-master:
  cmd.run:
    - name: systemctl restart redis-sentinel
    - unless: REDISCLI_AUTH="$(cat {{ redis.sentinel_auth_file }})" redis-cli --no-auth-warning -h 127.0.0.1 -p {{ redis.sentinel_port }} --raw SENTINEL MASTER {{ redis.master_name }} | grep -qxF {{ redis.master_name }}
    - require:
      - service: redis-sentinel-service-running
      - file: redis-sentinel-password-file-managed
      - lemp_redis: redis-sentinel-requires-its-password-and-logs-in-as-its-user

{#- sentinel.conf is written once, so a new down-after-milliseconds (issue
    #14: 2000 -> 1000) never reaches a running Sentinel through it: ask the
    running Sentinel, and SENTINEL SET it when it differs (Sentinel writes
    it to its own file). Live, no restart, no failover. #}
redis-sentinel-down-after-milliseconds-applied:
  cmd.run:
    - name: REDISCLI_AUTH="$(cat {{ redis.sentinel_auth_file }})" redis-cli --no-auth-warning -h 127.0.0.1 -p {{ redis.sentinel_port }} SENTINEL SET {{ redis.master_name }} down-after-milliseconds {{ redis.down_after_ms | int }} | grep -qxF OK
    - unless: REDISCLI_AUTH="$(cat {{ redis.sentinel_auth_file }})" redis-cli --no-auth-warning -h 127.0.0.1 -p {{ redis.sentinel_port }} --raw SENTINEL MASTER {{ redis.master_name }} | grep -A1 -xF down-after-milliseconds | tail -n 1 | grep -qxF {{ redis.down_after_ms | int }}
    - require:
      - cmd: redis-sentinel-monitors-the-sessions-master
      - lemp_redis: redis-sentinel-requires-its-password-and-logs-in-as-its-user

{#- sentinel.conf is written once, so a changed password (rotation, or the
    upgrade from a Sentinel without one) never reaches it through the file
    state above. This state asks the running Sentinel (refuses a client
    without the password, accepts the current one) and reads its file
    (auth-user/auth-pass for the master): only when one differs does it stop
    Sentinel, rewrite those lines and start it (_states/lemp_redis.py), so a
    second run changes nothing. One Sentinel restarting loses no session.
    During a rotation of Sentinel's own password its file's `user default`
    line accepts the previous one too (redis/sentinel_accepts.sls then
    drops it live). #}
redis-sentinel-requires-its-password-and-logs-in-as-its-user:
  lemp_redis.sentinel_authenticated:
    - name: /etc/redis/sentinel.conf
    - port: {{ redis.sentinel_port | int }}
    - master: {{ redis.master_name }}
    - user: sentinel
    - password: {{ secret('sentinel') | json }}
    - requirepass: {{ sentinel_password | json }}
    - previous_requirepass: {{ sentinel_previous | json }}
    - require:
      - service: redis-sentinel-service-running
    - require_in:
      - lemp_redis: redis-sentinel-accepts-its-current-passwords-live
