{#- The store, the secrets the job reads and its settings. Every secret is
    readable by the job's own user only: the encryption key (held by this
    role alone, so a data node can never read a backup), arb1's ssh key for
    the data nodes' forced command, the archiver's account. #}
{%- from 'backup/map.jinja' import backup with context %}
{%- set l = backup.lookup %}
{%- for key in ('backup:encryption_key', 'backup:ssh:private_key', 'tls:ca_cert') %}{% do salt['lemp_secret.require'](key) %}{% endfor %}
{%- set replication_password = salt['lemp_secret.require']('backup:replication_password') %}

include:
  - backup.package
  - zabbix.agent.package

backup-system-user-present:
  user.present:
    - name: {{ l.user }}
    - system: True
    - usergroup: True
    - home: {{ l.home }}
    - createhome: True
    - shell: /usr/sbin/nologin

{#- 0700: the backups are encrypted, the binlogs being archived are not yet. #}
{%- for sub in ('', '/backups', '/binlogs', '/drills', '/superseded', '/scratch') %}

backup-store{{ sub | replace('/', '-') }}-directory-present:
  file.directory:
    - name: {{ l.store }}{{ sub }}
    - user: {{ l.user }}
    - group: {{ l.user }}
    - mode: '0700'
    - makedirs: True
    - require:
      - user: backup-system-user-present
{%- endfor %}

{#- The file the Zabbix agent reads (template "lemp-ha backup store"):
    setgid, so each rewrite of it by the job is in the agent's group;
    nobody else may read it. The agent passes through the job's home
    (0711: no listing; useradd's 0755 or HOME_MODE otherwise). #}
backup-home-directory-traversable:
  file.directory:
    - name: {{ l.home }}
    - user: {{ l.user }}
    - group: {{ l.user }}
    - mode: '0711'
    - require:
      - user: backup-system-user-present

backup-monitoring-directory-present:
  file.directory:
    - name: {{ l.monitoring.dir }}
    - user: {{ l.user }}
    - group: {{ l.monitoring.group }}
    - mode: '2750'
    - require:
      - file: backup-home-directory-traversable
      - pkg: zabbix-agent-package-installed

backup-config-directory-present:
  file.directory:
    - name: {{ l.config_dir }}
    - user: root
    - group: {{ l.user }}
    - mode: '0750'
    - require:
      - user: backup-system-user-present

backup-encryption-key-managed:
  file.managed:
    - name: {{ l.config_dir }}/encryption.key
    - contents_pillar: backup:encryption_key
    - user: {{ l.user }}
    - group: {{ l.user }}
    - mode: '0400'
    - show_changes: False
    - require:
      - file: backup-config-directory-present

{#- ssh writes known_hosts here (the data nodes' host keys, first use). #}
backup-ssh-directory-present:
  file.directory:
    - name: {{ l.home }}/.ssh
    - user: {{ l.user }}
    - group: {{ l.user }}
    - mode: '0700'
    - require:
      - user: backup-system-user-present

backup-ssh-key-managed:
  file.managed:
    - name: {{ l.home }}/.ssh/id_backup_stream
    - contents_pillar: backup:ssh:private_key
    - user: {{ l.user }}
    - group: {{ l.user }}
    - mode: '0600'
    - show_changes: False
    - require:
      - file: backup-ssh-directory-present

backup-ca-cert-managed:
  file.managed:
    - name: {{ l.config_dir }}/ca.pem
    - contents_pillar: tls:ca_cert
    - user: root
    - group: {{ l.user }}
    - mode: '0644'
    - require:
      - file: backup-config-directory-present

{#- The archiver's account, for mariadb and mariadb-binlog through the DB
    endpoint; TLS to the server (the certificate names a node, not the VIP,
    so it is not checked against the host name). #}
backup-replication-option-file-managed:
  file.managed:
    - name: {{ l.config_dir }}/replication.cnf
    - user: {{ l.user }}
    - group: {{ l.user }}
    - mode: '0400'
    - show_changes: False
    - contents: |
        # Managed by Salt (salt/backup/config.sls): the binlog archiver's account.
        [client]
        user = {{ backup.galera.replication.user }}
        password = {{ replication_password }}
        ssl-ca = {{ l.config_dir }}/ca.pem
    - require:
      - file: backup-config-directory-present

{#- What lemp-backup reads (salt/backup/files/lemp-backup.py): data only. #}
backup-settings-file-managed:
  file.serialize:
    - name: {{ l.config_dir }}/backup.json
    - serializer: json
    - user: root
    - group: {{ l.user }}
    - mode: '0640'
    - dataset:
        store: {{ l.store }}
        data_nodes: {{ backup.data_nodes | json }}
        ssh:
          user: {{ backup.galera.backup.os_user }}
          key: {{ l.home }}/.ssh/id_backup_stream
          known_hosts: {{ l.home }}/.ssh/known_hosts
          connect_timeout: {{ l.ssh.connect_timeout }}
          command_timeout: {{ l.ssh.command_timeout }}
        endpoint:
          host: {{ backup.endpoint_host }}
          port: {{ l.endpoint_port }}
          option_file: {{ l.config_dir }}/replication.cnf
        encryption:
          tool: {{ l.encryption.tool }}
          cipher: {{ l.encryption.cipher }}
          iter: {{ l.encryption.iter }}
          key_file: {{ l.config_dir }}/encryption.key
          pillar_key: backup:encryption_key
        retention: {{ backup.retention | json }}
        incremental_falls_back_to_full: {{ backup.incremental_falls_back_to_full | json }}
        domain: {{ backup.galera.domain }}
        monitoring:
          status_file: {{ l.monitoring.status_file }}
        drill:
          buffer_pool: {{ l.drill.buffer_pool }}
          start_timeout: {{ l.drill.start_timeout }}
          check_timeout: {{ l.drill.check_timeout }}
          check_on_writer: {{ l.drill.check_on_writer | json }}
        archive:
          poll_seconds: {{ l.archive.poll_seconds }}
          rotate_after_seconds: {{ l.archive.rotate_after_seconds }}
          rotate_min_interval_seconds: {{ l.archive.rotate_min_interval_seconds }}
          stall_restart_seconds: {{ l.archive.stall_restart_seconds }}
          # mariadb-binlog registers as a replica: this machine's own server_id
          server_id: {{ backup.server_id }}
    - require:
      - file: backup-config-directory-present
