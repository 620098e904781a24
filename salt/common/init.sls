include:
  - common.package
  - common.hosts
  # every machine is monitored; the agent reads the monitor's address from the topology
  - zabbix.agent
