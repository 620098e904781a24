{#- The VIP on one of the load balancers (VRRPv3, unicast between them),
    moved away from one whose haproxy is not running. #}
{%- from 'keepalived/map.jinja' import keepalived with context %}
{%- set topology = salt['pillar.get']('topology') or raise('keepalived: pillar topology is missing') %}
{%- set lbs = topology.roles.lb.members %}
{%- set me = lbs | selectattr('name', 'equalto', grains['id']) | list %}
{%- if not me %}
{{-   raise('keepalived: ' ~ grains['id'] ~ ' has no role lb in the topology') }}
{%- endif %}
{%- set index = lbs.index(me[0]) %}
{%- set ns = namespace(iface=keepalived.interface) %}
{%- if not ns.iface %}
{%-   for iface, addrs in grains.get('ip4_interfaces', {}) | dictsort if me[0].address in addrs %}{% set ns.iface = iface %}{% endfor %}
{%- endif %}
{%- if not ns.iface %}
{{-   raise('keepalived: no interface holds ' ~ me[0].address ~ ' on ' ~ grains['id'] ~ '; set keepalived:lookup:interface') }}
{%- endif %}
{%- do keepalived.update({'interface': ns.iface}) %}
{%- set priority = keepalived.priority_top - index * keepalived.priority_step %}
{%- if priority < 1 or keepalived.priority_top + keepalived.check.weight >= keepalived.priority_top - keepalived.priority_step and lbs | length > 1 %}
{{-   raise('keepalived: priorities from priority_top/priority_step/check:weight cannot move the VIP (need top + weight < top - step, all > 0)') }}
{%- endif %}

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
        me: {{ me[0] | json }}
        peers: {{ lbs | rejectattr('name', 'equalto', grains['id']) | list | json }}
        priority: {{ priority }}
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
