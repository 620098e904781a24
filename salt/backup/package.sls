{#- The programs the store runs: Debian's MariaDB client and backup tools,
    openssl for encryption, and lemp-backup (salt/backup/files) with the
    repo's pure modules it imports (lemp_backup, lemp_backup_job, and
    lemp_restore for the drill's prepare). #}
{%- from 'backup/map.jinja' import backup with context %}
{%- set l = backup.lookup %}

backup-packages-installed:
  pkg.installed:
    - pkgs: {{ l.packages | json }}

backup-library-directory-present:
  file.directory:
    - name: {{ l.lib_dir }}
    - user: root
    - group: root
    - mode: '0755'

{%- for module in ('lemp_backup', 'lemp_backup_job', 'lemp_restore') %}

backup-library-{{ module }}-managed:
  file.managed:
    - name: {{ l.lib_dir }}/{{ module }}.py
    - source: salt://_modules/{{ module }}.py
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: backup-library-directory-present
{%- endfor %}

backup-command-managed:
  file.managed:
    - name: {{ l.command }}
    - source: salt://backup/files/lemp-backup.py
    - user: root
    - group: root
    - mode: '0755'
    - require:
      - pkg: backup-packages-installed
      - file: backup-library-lemp_backup-managed
      - file: backup-library-lemp_backup_job-managed
      - file: backup-library-lemp_restore-managed
