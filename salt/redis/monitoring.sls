{#- The Zabbix agent 2's Redis plugin reaches the local Redis through a named
    session holding the password. The plugin (6.0) sends a password and no
    user name, so it logs in as `default`, which has its own password and
    reads INFO, CONFIG GET, SLOWLOG and PING only (no key; defaults.yaml). Why a drop-in and not the {$REDIS.PASSWORD}
    macro: the secret stays on the web node, which already has it (Redis
    itself), readable by root and the agent only (0640 root:zabbix); a
    macro would put it in mon1's database, in API answers and in every
    export of the host. The template's {$REDIS.CONN.URI} names the session. #}
{%- from 'redis/map.jinja' import redis, secret with context %}
{%- from 'zabbix/map.jinja' import zabbix, monitors with context %}
{%- set mon = redis.monitoring %}
{%- if monitors %}
include:
  - redis

redis-zabbix-agent-session-file-managed:
  file.managed:
    - name: {{ mon.session_file }}
    - user: root
    - group: zabbix
    - mode: '0640'
    - show_changes: False
    - contents: |
        # Written by Salt (salt/redis/monitoring.sls): the local Redis for the
        # template "Redis by Zabbix agent 2" ({$REDIS.CONN.URI} = {{ mon.session }}).
        Plugins.Redis.Sessions.{{ mon.session }}.Uri=tcp://127.0.0.1:{{ redis.port | int }}
        Plugins.Redis.Sessions.{{ mon.session }}.Password={{ secret('default') }}
    - require:
      - pkg: redis-server-package-installed

{#- The agent's own config_loaded (in common) ran before this file was
    written; apply it here, so that a second run changes nothing. #}
redis-zabbix-agent-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ zabbix.agent.service }}
    - paths: [{{ zabbix.agent.config }}, {{ zabbix.agent.psk_file }}, /etc/zabbix/zabbix_agent2.d]
    - action: restart
    - require:
      - file: redis-zabbix-agent-session-file-managed
{%- else %}

redis-zabbix-agent-session-skipped-no-monitor:
  test.succeed_without_changes:
    - comment: the topology has no machine with role monitor; no agent to configure
{%- endif %}
