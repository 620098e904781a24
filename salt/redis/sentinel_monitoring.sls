{#- Sentinel's view for the Zabbix agent (template "lemp-ha Redis Sentinel"):
    three user parameters asking the local Sentinel, logged in with its
    password, read by redis-cli from the environment (REDISCLI_AUTH), never
    in argv. redis-cli comes with redis-sentinel. #}
{%- from 'redis/map.jinja' import redis with context %}
{%- from 'zabbix/map.jinja' import zabbix, monitors with context %}
{%- set cli = 'REDISCLI_AUTH="$(cat ' ~ redis.monitoring.sentinel_auth_file ~ ')" redis-cli --no-auth-warning -h 127.0.0.1 -p ' ~ (redis.sentinel_port | int) %}
{%- if monitors %}
{%- set sentinel_password = salt['lemp_secret.require'](redis.sentinel_password) %}
include:
  - redis.sentinel

redis-sentinel-zabbix-agent-password-file-managed:
  file.managed:
    - name: {{ redis.monitoring.sentinel_auth_file }}
    - user: root
    - group: zabbix
    - mode: '0640'
    - show_changes: False
    - contents: {{ sentinel_password | json }}

redis-sentinel-zabbix-agent-parameters-file-managed:
  file.managed:
    - name: {{ redis.monitoring.sentinel_file }}
    - user: root
    - group: zabbix
    - mode: '0640'
    - contents: |
        # Written by Salt (salt/redis/sentinel_monitoring.sls).
        # 1 when the local Sentinel answers PING, else 0.
        UserParameter=lemp.sentinel.ping,{{ cli }} PING 2>/dev/null | grep -c '^PONG' || true
        # "address:port" of the master Sentinel knows for {{ redis.master_name }}; empty when none.
        UserParameter=lemp.sentinel.master,{{ cli }} --raw SENTINEL get-master-addr-by-name {{ redis.master_name }} 2>/dev/null | paste -sd: -
        # 1 when enough Sentinels are reachable for the quorum and a failover (SENTINEL CKQUORUM), else 0.
        UserParameter=lemp.sentinel.ckquorum,{{ cli }} SENTINEL CKQUORUM {{ redis.master_name }} 2>/dev/null | grep -c '^OK' || true
    - require:
      - pkg: redis-sentinel-package-installed

{#- The agent's own config_loaded (in common) ran before this file was
    written; apply it here, so that a second run changes nothing. #}
redis-sentinel-zabbix-agent-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ zabbix.agent.service }}
    - paths: [{{ zabbix.agent.config }}, {{ zabbix.agent.psk_file }}, /etc/zabbix/zabbix_agent2.d]
    - action: restart
    - require:
      - file: redis-sentinel-zabbix-agent-parameters-file-managed
      - file: redis-sentinel-zabbix-agent-password-file-managed
{%- else %}

redis-sentinel-zabbix-agent-parameters-skipped-no-monitor:
  test.succeed_without_changes:
    - comment: the topology has no machine with role monitor; no agent to configure
{%- endif %}
