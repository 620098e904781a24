{#- The data node's side of backups (docs/backups.md, role db): arb1 (role
    backup) logs in over ssh as `lemp-backup` with a key that may run one
    command, the wrapper lemp-backup-stream, which streams mariabackup's
    mbstream to arb1 and desyncs/resyncs the node around it. Nothing of a
    backup is written on this machine: the stream goes to ssh's stdout, and
    arb1 encrypts and stores it. The accounts are in galera.users (the
    orchestration applies them again once the cluster is up).

    Why ssh, not a listener: arb1 starts the backup on its own timer (no
    Salt master needed), the transport is encrypted and authenticated by a
    key generated as a secret, and `restrict,command=,from=` leave that key
    nothing else: no shell, no forwarding, only from the backup machines. #}
{%- from 'galera/map.jinja' import galera with context %}
{%- set b = galera.backup %}
{%- set public_key = salt['lemp_secret.require']('backup:ssh:public_key') %}
{%- set password = salt['lemp_secret.require']('backup:db_password') %}
{%- set sources = galera.backup_machines | map(attribute='address') | list %}

include:
  - galera.package

galera-backup-source-packages-installed:
  pkg.installed:
    - pkgs: [sudo, openssh-server]

galera-backup-source-os-user-present:
  user.present:
    - name: {{ b.os_user }}
    - system: True
    - usergroup: True
    - home: {{ b.home }}
    - createhome: True
    # sshd runs the forced command through the login shell
    - shell: /bin/sh
    - password: '*'

{#- sshd reads authorized_keys as the user: its folder must be the user's. #}
galera-backup-source-ssh-directory-present:
  file.directory:
    - name: {{ b.home }}/.ssh
    - user: {{ b.os_user }}
    - group: {{ b.os_user }}
    - mode: '0700'
    - require:
      - user: galera-backup-source-os-user-present

galera-backup-source-authorized-key-managed:
  file.managed:
    - name: {{ b.home }}/.ssh/authorized_keys
    - user: {{ b.os_user }}
    - group: {{ b.os_user }}
    - mode: '0600'
    {#- restrict: no pty, no forwarding; the command is the only thing the key runs. #}
    - contents: |
        # Managed by Salt (salt/galera/backup_source.sls): arb1's backup key, one command only.
        restrict,from="{{ sources | join(',') or '127.0.0.1' }}",command="sudo -n {{ b.command }} {{ b.config_dir }}/my.cnf" {{ public_key }}
    - require:
      - file: galera-backup-source-ssh-directory-present

{#- The wrapper needs root (mariabackup reads the datadir, wsrep_desync is a
    global); the key's user may run exactly it, with its option file and the ssh request it got. #}
galera-backup-source-sudo-rule-managed:
  file.managed:
    - name: /etc/sudoers.d/lemp-backup-stream
    - user: root
    - group: root
    - mode: '0440'
    - contents: |
        # Managed by Salt (salt/galera/backup_source.sls).
        Defaults!{{ b.command }} env_keep += "SSH_ORIGINAL_COMMAND"
        {{ b.os_user }} ALL=(root) NOPASSWD: {{ b.command }} {{ b.config_dir }}/my.cnf
    - check_cmd: /usr/sbin/visudo -c -f
    - require:
      - pkg: galera-backup-source-packages-installed

galera-backup-source-option-file-managed:
  file.managed:
    - name: {{ b.config_dir }}/my.cnf
    - makedirs: True
    - dir_mode: '0700'
    - user: root
    - group: root
    # holds the backup account's password
    - mode: '0600'
    - show_changes: False
    - contents: |
        # Managed by Salt (salt/galera/backup_source.sls): mariabackup's account,
        # also the mariadb client's for the wrapper's rotate-binlog (RELOAD).
        [mariabackup]
        user = {{ b.user }}
        password = {{ password }}

        [client]
        user = {{ b.user }}
        password = {{ password }}

galera-backup-source-stream-wrapper-managed:
  file.managed:
    - name: {{ b.command }}
    - source: salt://galera/files/lemp-backup-stream.py
    - user: root
    - group: root
    - mode: '0755'
    - require:
      - pkg: galera-packages-installed
