{#- systemd units on arb1: lemp-backup@full / @incremental (one backup, run
    by their timers), lemp-backup-prune (retention, its own timer),
    lemp-backup-drill (the restore drill, its own timer) and the binlog
    archiver lemp-binlog-archive (Restart=always). A backup run by hand:
    systemctl start lemp-backup@full (salt-run lemp_backup.now); the drill:
    salt-run lemp_backup.drill. #}
{%- from 'backup/map.jinja' import backup with context %}
{%- set l = backup.lookup %}
{%- set units = '/etc/systemd/system' %}
{%- set hardening = ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=read-only',
                     'ReadWritePaths=' ~ l.store ~ ' ' ~ l.home, 'PrivateTmp=yes'] %}

include:
  - backup.config

backup-job-service-unit-managed:
  file.managed:
    - name: {{ units }}/lemp-backup@.service
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/backup/service.sls).
        [Unit]
        Description=lemp-ha backup (%i) of a Galera data node to {{ l.store }}
        After=network-online.target
        Wants=network-online.target
        [Service]
        Type=oneshot
        User={{ l.user }}
        Group={{ l.user }}
        ExecStart={{ l.command }} take %i
        {{ hardening | join('\n        ') }}

{%- for kind in ('full', 'incremental') %}

backup-{{ kind }}-timer-unit-managed:
  file.managed:
    - name: {{ units }}/lemp-backup-{{ kind }}.timer
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/backup/service.sls): pillar backup:schedule:{{ kind }}.
        [Unit]
        Description=lemp-ha {{ kind }} backup schedule
        [Timer]
        OnCalendar={{ backup.schedule[kind] }}
        Unit=lemp-backup@{{ kind }}.service
        # a backup missed while arb1 was down runs when it is back
        Persistent=true
        [Install]
        WantedBy=timers.target
{%- endfor %}

backup-prune-service-unit-managed:
  file.managed:
    - name: {{ units }}/lemp-backup-prune.service
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/backup/service.sls).
        [Unit]
        Description=lemp-ha backup retention (lemp_backup.retention)
        [Service]
        Type=oneshot
        User={{ l.user }}
        Group={{ l.user }}
        ExecStart={{ l.command }} prune
        {{ hardening | join('\n        ') }}

backup-prune-timer-unit-managed:
  file.managed:
    - name: {{ units }}/lemp-backup-prune.timer
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/backup/service.sls): pillar backup:schedule:prune.
        [Unit]
        Description=lemp-ha backup retention schedule
        [Timer]
        OnCalendar={{ backup.schedule.prune }}
        Unit=lemp-backup-prune.service
        [Install]
        WantedBy=timers.target

{#- The drill's scratch mariadbd is a child of this unit (no system
    service): its own datadir and socket under the store, no network. A
    failed drill fails the unit (systemctl --failed, the journal). #}
backup-drill-service-unit-managed:
  file.managed:
    - name: {{ units }}/lemp-backup-drill.service
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/backup/service.sls).
        [Unit]
        Description=lemp-ha restore drill: the newest backup chain into a scratch mariadbd, checked
        [Service]
        Type=oneshot
        User={{ l.user }}
        Group={{ l.user }}
        ExecStart={{ l.command }} drill
        {{ hardening | join('\n        ') }}

backup-drill-timer-unit-managed:
  file.managed:
    - name: {{ units }}/lemp-backup-drill.timer
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/backup/service.sls): pillar backup:schedule:drill.
        [Unit]
        Description=lemp-ha restore drill schedule
        [Timer]
        OnCalendar={{ backup.schedule.drill }}
        Unit=lemp-backup-drill.service
        Persistent=true
        [Install]
        WantedBy=timers.target

backup-binlog-archive-service-unit-managed:
  file.managed:
    - name: {{ units }}/lemp-binlog-archive.service
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Managed by Salt (salt/backup/service.sls).
        [Unit]
        Description=lemp-ha binlog archive: follows the Galera writer through {{ backup.endpoint_host }}:{{ l.endpoint_port }}
        After=network-online.target
        Wants=network-online.target
        # never give up: a cluster down for an hour is followed again when it is back
        StartLimitIntervalSec=0
        [Service]
        User={{ l.user }}
        Group={{ l.user }}
        ExecStart={{ l.command }} archive
        Restart=always
        RestartSec=5
        {{ hardening | join('\n        ') }}
        [Install]
        WantedBy=multi-user.target

{#- systemd reads new or changed unit files only after a reload. #}
backup-systemd-units-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: backup-job-service-unit-managed
      - file: backup-full-timer-unit-managed
      - file: backup-incremental-timer-unit-managed
      - file: backup-prune-service-unit-managed
      - file: backup-prune-timer-unit-managed
      - file: backup-drill-service-unit-managed
      - file: backup-drill-timer-unit-managed
      - file: backup-binlog-archive-service-unit-managed

{%- for timer in ('lemp-backup-full', 'lemp-backup-incremental', 'lemp-backup-prune', 'lemp-backup-drill') %}

backup-{{ timer }}-timer-running:
  service.running:
    - name: {{ timer }}.timer
    - enable: True
    - require:
      - cmd: backup-systemd-units-reloaded
      - file: backup-command-managed
      - file: backup-settings-file-managed
    - watch:
      - file: backup-{{ timer | replace('lemp-backup-', '') }}-timer-unit-managed
{%- endfor %}

{#- Restarted when its program or settings change: it resumes from its
    store (lemp_backup_job.archive_start), so a restart loses nothing. #}
backup-binlog-archive-running:
  service.running:
    - name: lemp-binlog-archive
    - enable: True
    - require:
      - cmd: backup-systemd-units-reloaded
      - file: backup-monitoring-directory-present
    - watch:
      - file: backup-binlog-archive-service-unit-managed
      - file: backup-command-managed
      - file: backup-library-lemp_backup-managed
      - file: backup-library-lemp_backup_job-managed
      - file: backup-settings-file-managed
      - file: backup-replication-option-file-managed
