include:
  - common.package
  - common.hosts
  # Every machine's host firewall, from the topology and pillar/ports.yaml.
  - firewall
