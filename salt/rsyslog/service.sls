{%- from 'rsyslog/map.jinja' import rsyslog with context %}
include:
  - rsyslog.package

rsyslog-service-running:
  service.running:
    - name: {{ rsyslog.service }}
    - enable: True
    - require:
      - pkg: rsyslog-packages-installed

{#- No `watch` (issue #9): rsyslog reads its configuration only at start, so
    a change is checked (rsyslogd -N1) and applied by a restart; the
    disk-assisted queue is saved on shutdown and sent after. #}
rsyslog-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ rsyslog.service }}
    - paths: {{ rsyslog.loaded.paths | json }}
    - verify_cmd: {{ rsyslog.loaded.verify_cmd }}
    - action: {{ rsyslog.loaded.action }}
    - require:
      - service: rsyslog-service-running
