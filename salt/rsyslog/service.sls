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
    disk-assisted queue is saved on shutdown and sent after.
    `order: last`: packages of the machine's roles drop files into
    /etc/rsyslog.d too (Debian's haproxy: 49-haproxy.conf, on the lb role,
    applied after `common`). Fingerprinted before them, the first highstate
    left rsyslog without them and the second restarted it (seen in the lab
    on lb1/lb2); at the end of the run, one run ends with rsyslog running
    what is on disk. #}
rsyslog-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ rsyslog.service }}
    - paths: {{ rsyslog.loaded.paths | json }}
    - verify_cmd: {{ rsyslog.loaded.verify_cmd }}
    - action: {{ rsyslog.loaded.action }}
    - order: last
    - require:
      - service: rsyslog-service-running
