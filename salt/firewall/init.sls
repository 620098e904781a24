{#- A host firewall on every machine (nftables), from the topology and
    pillar/ports.yaml: each machine accepts only what its roles serve, and
    only from the machines that use it; SSH only from the admin networks. #}
include:
  - firewall.package
  - firewall.config
  - firewall.service
