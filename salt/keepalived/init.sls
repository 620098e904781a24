{#- The VIP on one of the load balancers (VRRPv3, unicast between them),
    moved away from one whose haproxy is not running (FAULT), and never
    taken back by an LB that returns (nopreempt: failback moves nothing). #}
{%- from 'keepalived/map.jinja' import keepalived with context %}
{%- set topology = salt['pillar.get']('topology') or raise('keepalived: pillar topology is missing') %}
{%- set lbs = topology.roles.lb.members %}
{#- This LB, its peers and its priority, and the rules that make the VIP
    move (nopreempt, the check's weight): _modules/lemp_keepalived.py; a
    setting that cannot move the VIP stops the render, naming the key. #}
{%- set vrrp = salt['lemp_keepalived.checked'](keepalived, lbs, grains['id']) %}
{%- set ns = namespace(iface=keepalived.interface) %}
{%- if not ns.iface %}
{%-   for iface, addrs in grains.get('ip4_interfaces', {}) | dictsort if vrrp.me.address in addrs %}{% set ns.iface = iface %}{% endfor %}
{%- endif %}
{%- if not ns.iface %}
{{-   raise('keepalived: no interface holds ' ~ vrrp.me.address ~ ' on ' ~ grains['id'] ~ '; set keepalived:lookup:interface') }}
{%- endif %}
{%- do keepalived.update({'interface': ns.iface}) %}

keepalived-package-installed:
  pkg.installed:
    - pkgs:
      - {{ keepalived.package }}
      - psmisc

keepalived-config-file-managed:
  file.managed:
    - name: {{ keepalived.config }}
    - source: salt://keepalived/files/keepalived.conf.j2
    - template: jinja
    - mode: '0640'
    # An invalid file never lands: keepalived -t parses it (and finds the
    # interface) as the daemon would.
    - check_cmd: /usr/sbin/keepalived -t -f
    - context:
        k: {{ keepalived | json }}
        me: {{ vrrp.me | json }}
        peers: {{ vrrp.peers | json }}
        priority: {{ vrrp.priority }}
        nopreempt: {{ vrrp.nopreempt }}
        vip: {{ topology.network.vip }}
        internal_vip: {{ topology.network.internal_vip }}
        prefixlen: {{ topology.network.prefixlen }}
    - require:
      - pkg: keepalived-package-installed

{#- Starts and enables keepalived; no `watch` (lost when the run that wrote
    the file fails before it, issue #9): the next state reloads on content. #}
keepalived-service-running:
  service.running:
    - name: {{ keepalived.service }}
    - enable: True
    - require:
      - file: keepalived-config-file-managed

keepalived-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ keepalived.service }}
    - paths: {{ keepalived.loaded.paths | json }}
    - verify_cmd: /usr/sbin/keepalived -t -f {{ keepalived.config }}
    - action: {{ keepalived.loaded.action }}
    - require:
      - service: keepalived-service-running
