{#- The agent's own checks of this machine's roles (UserParameters), e.g.
    whether this LB holds the VIP: lemp_zabbix.agent_user_parameters picks
    them from zabbix:lookup:agent:user_parameters by role and fills in the
    topology's facts. A machine whose roles need none gets an empty file, so
    a role removed from it takes its checks away too. The agent restarts on
    the change (zabbix-agent-runs-its-current-configuration watches the
    drop-in directory). #}
{%- from 'zabbix/map.jinja' import zabbix, topology, me with context %}
{#- the loopback status server of salt/nginx, where the stock PHP-FPM
    template reads too (a machine without nginx gets the defaults, unused) #}
{%- from 'nginx/map.jinja' import nginx with context %}
{%- set fpm_status_url = 'http://' ~ nginx.status.listen ~ ':' ~ nginx.status.port ~ nginx.status.fpm_status_path %}
{%- set lines = salt['lemp_zabbix.agent_user_parameters'](me.roles, zabbix.agent.user_parameters,
                                                           {'vip': topology.network.vip,
                                                            'fpm_status_url': fpm_status_url}) %}
include:
  - zabbix.agent.service

zabbix-agent-userparameters-file-managed:
  file.managed:
    - name: {{ zabbix.agent.user_parameters_file }}
    - contents: {{ (['# Written by Salt (salt/zabbix/agent/userparameters.sls); by role: '
                     ~ 'zabbix:lookup:agent:user_parameters.'] + lines) | join('\n') | json }}
    - mode: '0644'
    - makedirs: True
    - require:
      - pkg: zabbix-agent-package-installed
    - require_in:
      - lemp_service: zabbix-agent-runs-its-current-configuration
