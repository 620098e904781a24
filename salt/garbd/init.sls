{#- Galera arbitrator (role arbitrator): a voting member without data, so
    that two data nodes keep quorum when one of them fails.

    Choice: garbd runs only when the number of data nodes in the topology is
    even. With an odd number (3, 5, ...) an extra voter would make the count
    even again and a clean 50/50 split possible, so on such a topology this
    state stops and disables garbd instead (the data nodes leave it out of
    wsrep_cluster_address too, see galera/map.jinja). #}
include:
  - garbd.package
  - garbd.config
  - garbd.service
