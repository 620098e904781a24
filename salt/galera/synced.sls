{#- Wait until this node is Synced in a Primary component with enough
    members; changes nothing. Used by the orchestrations as their last step
    (pillar galera_synced:{min_cluster_size,timeout} passed by them). #}
include:
  - galera.package

galera-node-synced-in-primary-component:
  galera.synced:
    - name: {{ grains['id'] }}
    - timeout: {{ salt['pillar.get']('galera_synced:timeout', 600) | int }}
    - min_cluster_size: {{ salt['pillar.get']('galera_synced:min_cluster_size', 1) | int }}
    - require:
      - pkg: galera-packages-installed
