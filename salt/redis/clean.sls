{%- from 'redis/map.jinja' import redis with context %}
redis-services-dead:
  service.dead:
    - names: [redis-sentinel, redis-server]
    - enable: False

redis-packages-purged:
  pkg.purged:
    - pkgs: [redis-sentinel, redis-server]
    - require:
      - service: redis-services-dead

redis-lemp-ha-settings-absent:
  file.absent:
    - names:
      - /etc/redis/lemp-ha.conf
      - {{ redis.replication_file }}
      - /usr/local/sbin/lemp-redis-follow
      - /etc/systemd/system/redis-server.service.d/lemp-ha-follow.conf
      - {{ redis.acl.file }}
      - {{ redis.sentinel_auth_file }}
      - /var/lib/redis/lemp-ha-acl.loaded


redis-zabbix-agent-files-absent:
  file.absent:
    - names:
      - {{ redis.monitoring.session_file }}
      - {{ redis.monitoring.sentinel_file }}
      - {{ redis.monitoring.sentinel_auth_file }}
