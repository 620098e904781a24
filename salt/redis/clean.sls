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
    - name: /etc/redis/lemp-ha.conf
