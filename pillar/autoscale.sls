# Scaling the web tier (issue #12): the lab's settings, on the master
# (orch.scale_out, orch.scale_in, orch.autoscale) and the monitor (Zabbix's
# triggers and actions). Every key, with its default: salt/scaling/pillar.example.
# Min, max and the pool's names: pillar/topology.yaml, scaling.web.
{#- The web nodes' PHP-FPM settings, from their own pillar file: mon1 turns
    busy workers into the tier's busy ratio with their pm.max_children
    (salt/zabbix/server/scaling.sls), which must be the web nodes' value,
    not phpfpm's default. Only that key is passed on. #}
{%- import_yaml 'web.sls' as web %}
scaling:
  # Short enough for tests/lab/test_scaling_auto.py to see a scale-out, a
  # refused repeat and a scale-in in about 2.5 min; a site keeps the
  # defaults (cooldown 15 min, interval 1m, window 5m, repeat 15m).
  # The cooldown counts from the end of the scale-out (web3 serving) and
  # sits between two moments of that test (docs/scaling.md, "The lab's
  # timeline"): it outlasts Zabbix's repeated request (`repeat`, 60 s,
  # Zabbix's least, plus a few seconds of jitter: ~66 s), so the first
  # request after that end is refused by it; and it is shorter than
  # repeat + window - interval (~80 s), so at most one low request is.
  cooldown: 75
  autoscale:
    high: 0.6
    low: 0.1
    interval: 5s
    window: 25s
    repeat: 1m

# pm.max_children of the web nodes (pillar/web.sls), for the busy ratio.
phpfpm:
  lookup:
    pool:
      max_children: {{ web.phpfpm.lookup.pool.max_children | int }}
