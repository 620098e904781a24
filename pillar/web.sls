{#- Non-secret settings of the web tier (role web). #}
{#- Network fields only (never roles or machines): a pillar file cannot read
    the `topology` key, and these are plain values of pillar/topology.yaml
    that pillar/topology.sls validates and passes on unchanged. #}
{%- import_yaml 'topology.yaml' as topology %}
# The load balancers build their backends from this mine entry
# (salt/haproxy/config.sls): the node's address on the lab subnet.
mine_functions:
  web_address:
    mine_function: network.ip_addrs
    cidr: {{ topology.network.subnet }}

phpfpm:
  lookup:
    pool:
      pm: dynamic
      max_children: 16
      start_servers: 4
      min_spare_servers: 2
      max_spare_servers: 6
      max_requests: 1000
    opcache:
      memory_consumption: 128

nginx:
  lookup:
    client_max_body_size: 20m
    # /healthz's details to the lab host too (the admin network), besides
    # loopback and the load balancers.
    health:
      details_from: [{{ topology.network.host }}]

glusterfs:
  lookup:
    mount_point: /srv/www-uploads
