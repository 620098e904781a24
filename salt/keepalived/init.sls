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
{#- haproxy tells keepalived that it stopped through this file (defaults.yaml haproxy_track) #}
{%- set track = keepalived.haproxy_track %}
{%- set track_dir = track.dir %}
{%- set track_path = track.dir ~ '/' ~ track.file %}

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
      - file: keepalived-haproxy-track-directory-present


{#- Where haproxy's unit tells keepalived that haproxy stopped (track_file
    in keepalived.conf). keepalived ignores a track file whose directory is
    missing (until its next start), so the directory exists before the
    configuration that names it is loaded; after a boot keepalived's own
    drop-in creates it again (/run is a tmpfs), with the same mode. #}
keepalived-haproxy-track-directory-present:
  file.directory:
    - name: {{ track_dir }}
    - mode: '0755'

{#- haproxy's death reaches keepalived at once (inotify), not at the check
    script's next 1-2 s poll. Written by this formula, not salt/haproxy:
    only a machine with keepalived gets it, the haproxy formula stays
    unaware of keepalived, and the path is named once (defaults.yaml
    haproxy_track). ExecStopPost runs after every stop, also when the
    master died by a signal (kill -9, a crash) and with the unit masked. #}
keepalived-learns-at-once-that-haproxy-stopped:
  file.managed:
    - name: /etc/systemd/system/{{ track.service }}.service.d/{{ track.dropin }}
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/keepalived/init.sls). keepalived watches
        # {{ track_path }} (track_file haproxy_stopped, weight 0):
        # non-zero puts this LB in FAULT and the VIPs move at once.
        # `-`: a failed write never fails haproxy's start (the file then
        # keeps its 1: the VIPs stay away from this LB, the safe side).
        [Service]
        ExecStartPost=-/bin/sh -c 'mkdir -p -m 0755 {{ track_dir }} && echo 0 > {{ track_path }}'
        ExecStopPost=-/bin/sh -c 'mkdir -p -m 0755 {{ track_dir }} && echo 1 > {{ track_path }}'

{#- A keepalived killed by SIGKILL (or crashed) cannot remove the VIPs:
    they stayed on the dead holder's interface while the other LB took
    them (both held them for 9.7 s in the fault matrix, until keepalived
    started again). systemd runs ExecStopPost after every stop, also when
    the main process died by a signal. #}
keepalived-removes-the-vips-when-it-dies:
  file.managed:
    - name: /etc/systemd/system/{{ keepalived.service }}.service.d/{{ keepalived.dropin }}
    - makedirs: True
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/keepalived/init.sls).
        [Service]
        # track_file haproxy_stopped needs its directory before keepalived
        # reads its configuration (/run is a tmpfs).
        ExecStartPre=/bin/mkdir -p -m 0755 {{ track_dir }}
        # `-`: after a clean stop keepalived has removed them itself.
        ExecStopPost=-/sbin/ip -4 addr del {{ topology.network.vip }}/{{ topology.network.prefixlen }} dev {{ keepalived.interface }}
        ExecStopPost=-/sbin/ip -4 addr del {{ topology.network.internal_vip }}/{{ topology.network.prefixlen }} dev {{ keepalived.interface }}

{#- A changed drop-in counts only after a daemon-reload. On content, not
    onchanges (a reload fired by a change is lost when the run fails before
    it, issue #9), and not left to service.running: Salt reloads only for
    the unit it starts, from a status read once per run (haproxy's was read
    by haproxy.service before its drop-in was written). #}
keepalived-systemd-reloaded-after-drop-in-changes:
  cmd.run:
    - name: systemctl daemon-reload
    {#- NeedDaemonReload covers a changed drop-in; a new one (its directory
        created by this run) is not flagged by systemd (seen on the lab:
        "no", and the units ran without it), so a drop-in missing from the
        unit's loaded DropInPaths counts too. #}
    - onlyif: >-
        systemctl show --property NeedDaemonReload --value {{ track.service }} {{ keepalived.service }} | grep -qx yes
        || ! systemctl show --property DropInPaths --value {{ track.service }} | grep -q '/{{ track.service }}.service.d/{{ track.dropin }}'
        || ! systemctl show --property DropInPaths --value {{ keepalived.service }} | grep -q '/{{ keepalived.service }}.service.d/{{ keepalived.dropin }}'
    - require:
      - file: keepalived-learns-at-once-that-haproxy-stopped
      - file: keepalived-removes-the-vips-when-it-dies

{#- Starts and enables keepalived; no `watch` (lost when the run that wrote
    the file fails before it, issue #9): the next state reloads on content. #}
keepalived-service-running:
  service.running:
    - name: {{ keepalived.service }}
    - enable: True
    - require:
      - file: keepalived-config-file-managed
      - cmd: keepalived-systemd-reloaded-after-drop-in-changes

keepalived-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ keepalived.service }}
    - paths: {{ keepalived.loaded.paths | json }}
    - verify_cmd: /usr/sbin/keepalived -t -f {{ keepalived.config }}
    - action: {{ keepalived.loaded.action }}
    - require:
      - service: keepalived-service-running
