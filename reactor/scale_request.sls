{#- lemp-ha/scale/request, sent by Zabbix's action on the monitor
    (salt/zabbix/server/scaling.sls): orch.autoscale with the sender's
    authenticated minion id and the direction it asked. Both are checked
    there (_runners/lemp_scale.py decide); nothing else of the event is used. #}
autoscale-on-request-from-{{ data['id'] }}:
  runner.state.orchestrate:
    - queue: True
    - args:
      - mods: orch.autoscale
      - pillar:
          scale_request:
            sender: {{ data['id'] | json }}
            direction: {{ data['data']['direction'] | default('') | json }}
