{#- GlusterFS health for Zabbix (template "lemp-ha GlusterFS"). The gluster
    CLI needs root; rather than a sudo rule for the agent's user, a root
    systemd timer writes /run/<runtime_dir>/status.json (no secret in it)
    and the agent only reads that file (vfs.file.contents). #}
{%- from 'glusterfs/map.jinja' import glusterfs with context %}
{%- set mon = glusterfs.monitoring %}
include:
  - glusterfs.server

glusterfs-status-script-file-managed:
  file.managed:
    - name: {{ mon.script }}
    - source: salt://glusterfs/files/gluster_status.py
    - makedirs: True
    - user: root
    - group: root
    - mode: '0755'

glusterfs-status-service-unit-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ mon.unit }}.service
    - contents: |
        # Managed by Salt (salt/glusterfs/monitoring.sls).
        [Unit]
        Description=lemp-ha: GlusterFS volume {{ glusterfs.volume }} health for the Zabbix agent
        [Service]
        Type=oneshot
        RuntimeDirectory={{ mon.runtime_dir }}
        RuntimeDirectoryMode=0755
        RuntimeDirectoryPreserve=yes
        ExecStart=/usr/bin/python3 {{ mon.script }} {{ glusterfs.volume }} /run/{{ mon.runtime_dir }}/status.json

glusterfs-status-timer-unit-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ mon.unit }}.timer
    - contents: |
        # Managed by Salt (salt/glusterfs/monitoring.sls).
        [Unit]
        Description=lemp-ha: GlusterFS health every {{ mon.interval }}
        [Timer]
        OnBootSec={{ mon.interval }}
        OnUnitActiveSec={{ mon.interval }}
        AccuracySec=1s
        [Install]
        WantedBy=timers.target

glusterfs-status-systemd-units-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: glusterfs-status-service-unit-file-managed
      - file: glusterfs-status-timer-unit-file-managed

{#- restarted on a change of its unit, so a new interval applies at once #}
glusterfs-status-timer-running:
  service.running:
    - name: {{ mon.unit }}.timer
    - enable: True
    - require:
      - file: glusterfs-status-script-file-managed
      - cmd: glusterfs-status-systemd-units-reloaded
      - service: glusterfs-daemon-running
    - watch:
      - file: glusterfs-status-timer-unit-file-managed
