{#- The arbitrator machine holds the volume's arbiter brick: file names and
    metadata only, the tie-breaker between the two web nodes' copies. #}
include:
  - glusterfs.server
  - glusterfs.monitoring
