{#- haproxy.cfg: HTTPS on the VIP, web backends from the Salt mine (refuses an
    empty list) and the scaling pool's slots, galera and redis TCP endpoints
    on the internal VIP, stats page and admin socket, a maxconn everywhere. #}
{%- from 'haproxy/map.jinja' import haproxy with context %}
{%- set topology = salt['pillar.get']('topology') or raise('haproxy: pillar topology is missing') %}
{%- set vip_cert = salt['lemp_secret.require']('tls:vip:cert') %}
{%- set vip_key = salt['lemp_secret.require']('tls:vip:key') %}
{%- set ca_cert = salt['lemp_secret.require']('tls:ca_cert') %}
{%- set redis_password = salt['lemp_secret.require']('sessions:redis_check_password') if haproxy.redis.enabled else '' %}
{%- set db_nodes = topology.roles.db.members %}
{%- set limits = salt['lemp_haproxy.checked'](haproxy.limits) %}
{#- Edge protection and the stats login, checked (_modules/lemp_edge.py):
    a bad key stops the render, named, before haproxy.cfg changes. #}
{%- set edge = salt['lemp_edge.haproxy'](haproxy.edge, topology.machines, grains['id']) %}
{%- set stats_login = salt['lemp_edge.stats_login'](haproxy.stats_user, salt['lemp_secret.require']('haproxy:stats_password')) %}
{#- The web backend (_modules/lemp_pool.py web_servers): the web nodes that
    published their address in the mine (pillar mine_functions web_address;
    one without is left out and named in the config, none at all fails,
    never an empty backend), then a slot per pool name of
    scaling.web.pool, enabled iff pillar scaling:enrolled lists it. #}
{%- set backend = salt['lemp_pool.backend'](haproxy.mine_function) %}
{#- The peers section (shared stick tables): every LB of the topology,
    named by minion id (_modules/lemp_haproxy.py peers). #}
{%- set peers = salt['lemp_haproxy.checked_peers'](topology.roles.lb.members, grains['id'], haproxy.peers.port, haproxy.peers.name) %}
{%- if haproxy.galera.enabled and not db_nodes %}
{{-   raise('haproxy: galera is enabled but the topology has no machine with role db') }}
{%- endif %}
include:
  - haproxy.package

haproxy-tls-directory-present:
  file.directory:
    - name: {{ haproxy.tls_dir }}
    - user: root
    - group: haproxy
    - mode: '0750'
    - require:
      - pkg: haproxy-package-installed

haproxy-vip-certificate-file-managed:
  file.managed:
    - name: {{ haproxy.tls_dir }}/vip.pem
    - contents: {{ (vip_cert.rstrip('\n') ~ '\n' ~ vip_key.rstrip('\n') ~ '\n') | json }}
    - user: root
    - group: haproxy
    - mode: '0640'
    - show_changes: False
    - require:
      - file: haproxy-tls-directory-present

haproxy-ca-certificate-file-managed:
  file.managed:
    - name: {{ haproxy.tls_dir }}/ca.pem
    - contents: {{ ca_cert | json }}
    - mode: '0644'
    - require:
      - file: haproxy-tls-directory-present

haproxy-config-file-managed:
  file.managed:
    - name: {{ haproxy.config }}
    - source: salt://haproxy/files/haproxy.cfg.j2
    - template: jinja
    - show_changes: False
    - user: root
    - group: haproxy
    - mode: '0640'
    - context:
        haproxy: {{ haproxy | json }}
        network: {{ topology.network | json }}
        web_nodes: {{ backend.serving | json }}
        missing_web_nodes: {{ backend.missing | json }}
        pool_slots: {{ backend.slots | json }}
        db_nodes: {{ db_nodes | json }}
        redis_password: {{ redis_password | json }}
        limits: {{ limits | json }}
        edge: {{ edge | json }}
        stats_login: {{ stats_login | json }}
        peers: {{ peers | json }}
    - check_cmd: /usr/sbin/haproxy -c -f
    - require:
      - file: haproxy-vip-certificate-file-managed
      - file: haproxy-ca-certificate-file-managed
