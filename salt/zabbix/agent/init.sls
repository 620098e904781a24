{#- Zabbix agent 2 on every machine (included by `common`): active checks
    to the monitor role's machines, PSK encryption with this machine's own
    key, HostMetadata from its roles for autoregistration. An agent whose
    server is not up yet retries on its own (RefreshActiveChecks), so the
    agents may come before mon1 in orch.site. #}
{%- from 'zabbix/map.jinja' import monitors with context %}
{%- if monitors %}
include:
  - zabbix.agent.package
  - zabbix.agent.config
  - zabbix.agent.userparameters
  - zabbix.agent.service
{%- else %}

zabbix-agent-skipped-no-monitor-in-topology:
  test.succeed_without_changes:
    - comment: the topology has no machine with role monitor (pillar/topology.yaml); no agent to configure
{%- endif %}
