{#- Redis server holding the PHP sessions. Replication is Sentinel's business
    after the first start: redis.conf is written once (Sentinel rewrites the
    replicaof line on failover); our settings live in an included file. #}
{%- from 'redis/map.jinja' import redis, redis_nodes, my_address, secret, previous, other_sentinels with context %}
{%- set first = redis_nodes[0] %}
include:
  - redis.acl
  - redis.replication
  - redis.monitoring

redis-server-package-installed:
  pkg.installed:
    - name: redis-server
    {#- the ACL file (redis/acl.sls) goes into the package's /etc/redis #}
    - require_in:
      - file: redis-acl-users-file-managed
      - file: redis-replication-settings-file-managed

redis-lemp-ha-settings-file-managed:
  file.managed:
    - name: /etc/redis/lemp-ha.conf
    - user: redis
    - group: redis
    - mode: '0640'
    - show_changes: False
    - contents: |
        # Written by Salt (salt/redis).
        bind {{ my_address }} 127.0.0.1
        port {{ redis.port }}
        protected-mode yes
        aclfile {{ redis.acl.file }}
        # masteruser/masterauth, applied live when they change (redis/replication.sls)
        include {{ redis.replication_file }}
        maxmemory {{ redis.maxmemory }}
        maxmemory-policy volatile-lru
        appendonly yes
        replica-read-only yes
        # A replica that lost its master (or is still loading from it)
        # answers an error, never stale or empty sessions. INFO, PING and
        # the replication commands still answer, so HAProxy's role check
        # and Sentinel are unaffected. Defence in depth: HAProxy sends PHP
        # only to the master.
        replica-serve-stale-data no
        # 0 on purpose: with 1, the master refuses every session write
        # (NOREPLICAS) whenever its only replica is away, i.e. at every
        # restart or loss of the other web node: a planned event would cost
        # every write. Sessions written in the ~1 s before a failover may
        # therefore be lost (docs/sessions.md).
        min-replicas-to-write 0
        # A replica that (re)connects needs a full copy. Redis 7 sends it
        # straight over the socket but first waits 5 s for other replicas to
        # share the transfer; in that wait the replica has none of the
        # sessions written since its start, and a master lost then loses
        # them all (seen in CI rehearsal 13: a web node back from a restart,
        # the other one killed). There is one replica per master here, and
        # the copy of small session data takes milliseconds: start at once.
        repl-diskless-sync-delay 0
    - require:
      - pkg: redis-server-package-installed
      - file: redis-acl-users-file-managed
      - file: redis-replication-settings-file-managed

redis-server-config-file-written-once:
  file.managed:
    - name: /etc/redis/redis.conf
    - user: redis
    - group: redis
    - mode: '0640'
    - replace: False
    - contents: |
        # Written once by Salt (salt/redis); Sentinel may rewrite replicaof.
        include /etc/redis/lemp-ha.conf
        dir /var/lib/redis
        logfile /var/log/redis/redis-server.log
        daemonize no
        supervised systemd
{%- if grains['id'] != first.name %}
        replicaof {{ first.address }} {{ redis.port }}
{%- endif %}
    - require:
      - pkg: redis-server-package-installed

{#- The Debian package ships its own redis.conf: replace it the first time. #}
redis-server-debian-config-replaced-once:
  cmd.run:
    - name: rm -f /etc/redis/redis.conf
    - onlyif: grep -q '^# Redis configuration file example' /etc/redis/redis.conf
    - require:
      - pkg: redis-server-package-installed
    - require_in:
      - file: redis-server-config-file-written-once

{#- A node that was master when it stopped would come back as master with
    its old sessions until Sentinel demotes it (up to 10 s), and HAProxy's
    role:master check could send sessions there, lost at the demotion. So
    before every start lemp-redis-follow asks the other Sentinels which node
    is master and, when it is another one, starts this one as its replica
    (the replicaof line of redis.conf, the one Sentinel rewrites). #}
redis-follow-script-installed:
  file.managed:
    - name: /usr/local/sbin/lemp-redis-follow
    - source: salt://redis/files/lemp-redis-follow.py
    - mode: '0755'

redis-server-follows-the-sentinels-master-at-start:
  file.managed:
    - name: /etc/systemd/system/redis-server.service.d/lemp-ha-follow.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (salt/redis/init.sls). `+`: as root, to rewrite
        # redis.conf; `-`: a failure never stops Redis from starting.
        [Service]
        ExecStartPre=-+/usr/local/sbin/lemp-redis-follow --me {{ my_address }} --master-name {{ redis.master_name }} --quorum {{ redis.quorum }} --sentinels '{{ other_sentinels | map(attribute='address') | join(',') }}' --sentinel-port {{ redis.sentinel_port }} --password-file {{ redis.sentinel_auth_file }} --config /etc/redis/redis.conf
    - require:
      - file: redis-follow-script-installed

redis-server-systemd-unit-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: redis-server-follows-the-sentinels-master-at-start

{#- The watch stays only for the first write of redis.conf (the Debian file
    replaced: a restart is the only way to load it). Our settings are
    applied by the next state, on content, so that a run that wrote them and
    then failed is made good by the next run (issue #9). #}
redis-server-service-running:
  service.running:
    - name: redis-server
    - enable: True
    - require:
      - file: redis-lemp-ha-settings-file-managed
      - cmd: redis-server-systemd-unit-reloaded
    - watch:
      - file: redis-server-config-file-written-once

{#- Settings Redis can change while it runs are set live first (CONFIG SET),
    so that a new one (replica-serve-stale-data, issue #14) reaches a running
    node without the restart below: a restart of the master is a failover. #}
redis-server-live-settings-applied:
  lemp_redis.settings_applied_live:
    - name: /etc/redis/lemp-ha.conf
    - port: {{ redis.port | int }}
    - user: {{ redis.acl.admin_user }}
    - password: {{ secret(redis.acl.admin_user) | json }}
    - previous_password: {{ previous(redis.acl.admin_user) | json }}
    - settings: {{ redis.live_settings | json }}
    - require:
      - service: redis-server-service-running
      - file: redis-lemp-ha-settings-file-managed

{#- Only lemp-ha.conf is compared: redis.conf is rewritten by Redis itself
    (CONFIG REWRITE when Sentinel reconfigures replication), so its content
    changes on every failover and says nothing about what Salt wants.
    Restart, not reload: Redis has no reload (the same restart the watch
    did before; the AOF keeps the sessions). No check: redis-server has no
    configuration test mode. Nor when the running Redis already has every
    setting of the files (CONFIG GET, lemp_redis.runs_settings): the upgrade
    that moved masteruser/masterauth out of lemp-ha.conf into its include
    changes lemp-ha.conf's text, not what Redis runs. #}
redis-server-runs-its-current-settings:
  lemp_service.config_loaded:
    - name: redis-server
    - paths: [/etc/redis/lemp-ha.conf]
    - action: restart
    - applied_fun: lemp_redis.runs_settings
    - applied_kwargs:
        path: /etc/redis/lemp-ha.conf
        port: {{ redis.port | int }}
        user: {{ redis.acl.admin_user }}
        passwords: {{ [secret(redis.acl.admin_user), previous(redis.acl.admin_user)] | json }}
    - require:
      - service: redis-server-service-running
      - lemp_redis: redis-server-live-settings-applied
    {#- users are applied to the Redis running these settings (redis/acl.sls) #}
    - require_in:
      - lemp_redis: redis-acl-users-loaded-without-restart
