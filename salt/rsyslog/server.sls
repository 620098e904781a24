{#- The collector (role monitor): every machine's logs over RELP into
    <directory>/<host>/<program>.log, the streams Zabbix watches gathered
    in <directory>/_watched/<stream>.log, readable by one group (the Zabbix
    agent's, through a unit drop-in), kept retention_days by logrotate.
    Why logrotate and not a find-based timer: the files keep fixed names
    (what staff open, what Zabbix's logrt[] follows through a rotation),
    Debian already runs logrotate daily, and it compresses. #}
{%- from 'rsyslog/map.jinja' import rsyslog with context %}
{%- from 'zabbix/map.jinja' import zabbix with context %}
{%- set server = salt['lemp_logs.check_server'](rsyslog.server) %}
include:
  - rsyslog.package
  - rsyslog.service
  - zabbix.agent.service

rsyslog-collector-packages-installed:
  pkg.installed:
    - pkgs: {{ server.packages | json }}

rsyslog-remote-logs-group-present:
  group.present:
    - name: {{ server.group }}
    - system: True

rsyslog-remote-logs-directory-present:
  file.directory:
    - names:
      - {{ server.directory }}
      - {{ server.directory }}/_watched
    - user: root
    - group: {{ server.group }}
    - mode: '0750'
    - require:
      - group: rsyslog-remote-logs-group-present

{#- The watched files exist before the first line arrives, so that the
    Zabbix log items are supported from the start and skip nothing. #}
{%- for stream in server.watched | sort %}

rsyslog-watched-{{ stream }}-file-present:
  file.managed:
    - name: {{ server.directory }}/_watched/{{ stream }}.log
    - replace: False
    - user: root
    - group: {{ server.group }}
    - mode: '0640'
    - require:
      - file: rsyslog-remote-logs-directory-present
{%- endfor %}

rsyslog-collector-config-file-managed:
  file.managed:
    - name: {{ server.config }}
    - source: salt://rsyslog/files/collector.conf.j2
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    - context:
        server: {{ server | json }}
    - require:
      - pkg: rsyslog-packages-installed
      - file: rsyslog-remote-logs-directory-present
    - require_in:
      - lemp_service: rsyslog-runs-its-current-configuration

rsyslog-remote-logs-logrotate-file-managed:
  file.managed:
    - name: {{ server.logrotate }}
    - source: salt://rsyslog/files/logrotate.j2
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    - context:
        server: {{ server | json }}
    - require:
      - pkg: rsyslog-collector-packages-installed

{#- The agent reads the copies with the group, nothing more (not adm). #}
rsyslog-zabbix-agent-reads-remote-logs-dropin-managed:
  file.managed:
    - name: {{ server.agent_dropin }}
    - makedirs: True
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Written by Salt (salt/rsyslog/server.sls): the agent reads {{ server.directory }}.
        [Service]
        SupplementaryGroups={{ server.group }}
    - require:
      - group: rsyslog-remote-logs-group-present

{#- Stateful, not onchanges: a run that failed after writing the drop-in is
    caught up by the next one. NeedDaemonReload alone misses a drop-in that
    is new (systemd only watches the files it loaded; seen in the lab): the
    unit's DropInPaths must name it too. #}
rsyslog-zabbix-agent-unit-reloaded:
  cmd.run:
    - name: systemctl daemon-reload
    - unless: >-
        systemctl show -p DropInPaths --value {{ zabbix.agent.service }} | tr ' ' '\n' | grep -qxF {{ server.agent_dropin }}
        && systemctl show -p NeedDaemonReload --value {{ zabbix.agent.service }} | grep -qx no
    - require:
      - file: rsyslog-zabbix-agent-reads-remote-logs-dropin-managed

{#- Its own record (stamp_dir): the agent's formula keeps the record of its
    configuration files. #}
rsyslog-zabbix-agent-runs-with-the-remote-logs-group:
  lemp_service.config_loaded:
    - name: {{ zabbix.agent.service }}
    - paths: [{{ server.agent_dropin }}]
    - action: restart
    - stamp_dir: /var/lib/lemp-ha/loaded/remote-logs
    - require:
      - cmd: rsyslog-zabbix-agent-unit-reloaded
      - lemp_service: zabbix-agent-runs-its-current-configuration
