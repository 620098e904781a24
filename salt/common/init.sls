include:
  - common.package
  - common.hosts
  # time sync: chrony, unless the host's clock serves (a container)
  - common.time
  # SSH with keys only
  - common.ssh
  # security updates: needrestart in list mode; orch.patch applies them
  - common.updates
  # every machine is monitored; the agent reads the monitor's address from the topology
  - zabbix.agent
  # every machine forwards its logs to the monitor (salt/rsyslog; docs/monitoring.md "Logs")
  - rsyslog
  # Every machine's host firewall, from the topology and pillar/ports.yaml.
  - firewall
