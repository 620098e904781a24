{#- Undo backup: stop the timers and the archiver, remove the units, the
    tools, the settings and the secrets. The store (backups and binlogs) is
    KEPT: it may be the only copy of the data. Remove it by hand once it is
    not needed: rm -r /srv/lemp-backup (backup:lookup:store). #}
{%- from 'backup/map.jinja' import backup with context %}
{%- set l = backup.lookup %}

{%- for unit in ('lemp-backup-full.timer', 'lemp-backup-incremental.timer', 'lemp-backup-prune.timer',
                 'lemp-backup-drill.timer',
                 'lemp-binlog-archive.service') %}

backup-{{ unit | replace('.', '-') }}-dead:
  service.dead:
    - name: {{ unit }}
    - enable: False
{%- endfor %}

backup-units-tools-and-settings-absent:
  file.absent:
    - names:
      - /etc/systemd/system/lemp-backup@.service
      - /etc/systemd/system/lemp-backup-full.timer
      - /etc/systemd/system/lemp-backup-incremental.timer
      - /etc/systemd/system/lemp-backup-prune.service
      - /etc/systemd/system/lemp-backup-prune.timer
      - /etc/systemd/system/lemp-backup-drill.service
      - /etc/systemd/system/lemp-backup-drill.timer
      - {{ l.monitoring.dir }}
      - /etc/systemd/system/lemp-binlog-archive.service
      - {{ l.command }}
      - {{ l.lib_dir }}
      - {{ l.config_dir }}
      - {{ l.home }}/.ssh
    - require:
      - service: backup-lemp-binlog-archive-service-dead

backup-systemd-units-reloaded-after-clean:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: backup-units-tools-and-settings-absent
