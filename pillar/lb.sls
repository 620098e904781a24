{#- Non-secret settings of the load balancers (role lb). #}
{#- HAProxy's connection limits are sized from the backends' own limits,
    read from their pillar files (only those keys are passed on). #}
{%- import_yaml 'web.sls' as web %}
{%- import_yaml 'galera.sls' as galera %}
{#- Network fields only (as pillar/web.sls): a plain value of pillar/topology.yaml. #}
{%- import_yaml 'topology.yaml' as topology %}
haproxy:
  lookup:
    limits:
      php_max_children: {{ web.phpfpm.lookup.pool.max_children | int }}
      db_max_connections: {{ galera.galera.lookup.max_connections | int }}
    stats_port: 8404
    edge:
      rate_limit:
        # The lab's limit: 200 requests in 10 s per client address, low
        # enough that tests/lab/test_edge.py reaches it from one lab machine
        # in a second or two. The lab host (the admin network; the tests'
        # load loops, ab and the bench run there) is never limited.
        requests: 200
        period: 10s
        exempt: [{{ topology.network.host }}]
    web:
      backend: web
      check: {inter: 1s, fall: 2, rise: 2}
      retries: 3
    galera:
      enabled: True
      check_port: 9200
    redis:
      enabled: True

keepalived:
  lookup:
    virtual_router_id: 77
    advert_int: 0.1
    priority_top: 150
    priority_step: 50
    nopreempt: True
    check: {interval: 1, fall: 2, rise: 2, weight: 0}
