{#- salt/minion/*/start -> orch.enrol for the minion that started. Only the
    authenticated minion id (data['id']) is handed on; orch.enrol checks it
    against the scaling pool and its accepted key (runner lemp_enrol.plan). #}
enrol-started-minion-if-it-is-a-pool-node:
  runner.state.orchestrate:
    - args:
      - mods: orch.enrol
      - pillar:
          enrol:
            node: {{ data['id'] | json }}
    - queue: True
