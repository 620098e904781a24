{#- rsyslog on every machine (included by `common`): journald's messages,
    the services' own log files and HAProxy's log socket, forwarded to the
    collector (the monitor role's machine) over RELP with a disk-assisted
    queue. The collector's side is rsyslog.server. #}
{%- from 'rsyslog/map.jinja' import collector with context %}
{%- if collector %}
include:
  - rsyslog.package
  - rsyslog.client
  - rsyslog.service
{%- else %}

rsyslog-skipped-no-monitor-in-topology:
  test.succeed_without_changes:
    - comment: the topology has no machine with role monitor (pillar/topology.yaml); no collector to forward logs to
{%- endif %}
