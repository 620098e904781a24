{#- The Salt master's own configuration, from this repository: the lab's
    provisioner only bootstraps a master that can run orch.site, which
    applies this (role master) and owns the configuration from then on.
    No package state: salt comes with the machine (the lab's box, or the
    on-premises install of docs/scaling.md). #}
include:
  - master.config
  - master.service
