{#- Scaling on load (issue #12, docs/scaling.md), the monitor's side: the
    template "lemp-ha Web tier load" (files/templates/lemp-ha-scaling.yaml,
    imported by api.sls) raises a problem tagged lemp-scale: out or in; an
    action per direction runs a global script on the Zabbix server,
    `sudo -n <command> out|in`, and that command sends the Salt event
    lemp-ha/scale/request from mon1's own minion, which authenticates it:
    the master's reactor sees mon1's id (reactor/scale_request.sls,
    orch.autoscale). The zabbix user may run exactly these two command
    lines as root, nothing else. Settings: pillar scaling (salt/scaling). #}
{%- from 'zabbix/map.jinja' import zabbix, api_url with context %}
{%- from 'scaling/map.jinja' import scaling with context %}
{%- set request = scaling.request %}
{#- the web pool's pm.max_children, as the web nodes get it: phpfpm's
    defaults and pillar phpfpm:lookup, which pillar/web.sls would set and
    mon1 then also needs (pillar/autoscale.sls) #}
{%- import_yaml 'phpfpm/defaults.yaml' as phpfpm_defaults %}
{%- set fpm = salt['slsutil.merge'](phpfpm_defaults.phpfpm, salt['pillar.get']('phpfpm:lookup', {}), strategy='recurse') %}
include:
  - zabbix.server.api

zabbix-scaling-sudo-package-installed:
  pkg.installed:
    - name: sudo

zabbix-scaling-request-command-file-managed:
  file.managed:
    - name: {{ request.command }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True
    - contents: |
        #!/bin/sh
        # Written by Salt (salt/zabbix/server/scaling.sls). Zabbix's scaling
        # actions run it as {{ request.user }} through sudo: it asks the Salt
        # master to scale the web tier out or in. The master decides
        # (cooldown, min, max: orch.autoscale) and logs why.
        case "$1" in
          out|in) ;;
          *) echo "usage: $0 out|in" >&2; exit 2 ;;
        esac
        exec {{ request.salt_call }} --out=quiet event.send {{ request.tag }} "{\"direction\": \"$1\"}"

zabbix-scaling-request-sudoers-file-managed:
  file.managed:
    - name: {{ request.sudoers }}
    - user: root
    - group: root
    - mode: '0440'
    - check_cmd: /usr/sbin/visudo -cf
    - contents: |
        # Written by Salt (salt/zabbix/server/scaling.sls): the Zabbix server's
        # scaling script may send the scaling request, and nothing else.
{%- for line in salt['lemp_scaling.sudoers_lines'](request.user, request.command) %}
        {{ line }}
{%- endfor %}
    - require:
      - pkg: zabbix-scaling-sudo-package-installed
      - file: zabbix-scaling-request-command-file-managed

zabbix-api-scaling-macros-scripts-and-actions-present:
  lemp_zabbix.scaling_requests_present:
    - url: {{ api_url }}
    - ca_file: {{ zabbix.server.ca_file }}
    - scaling: {{ scaling | json }}
    - max_children: {{ fpm.pool.max_children }}
    - require:
      - lemp_zabbix: zabbix-api-repo-templates-imported
      - file: zabbix-scaling-request-sudoers-file-managed
