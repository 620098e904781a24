{#- Undo rsyslog and rsyslog.server: forwarding stopped, the files Salt
    wrote removed, the packages purged. The collected logs
    (rsyslog:lookup:server:directory) stay: they are data; remove them by
    hand when their retention no longer matters. #}
{%- from 'rsyslog/map.jinja' import rsyslog with context %}

rsyslog-service-dead:
  service.dead:
    - name: {{ rsyslog.service }}
    - enable: False

rsyslog-lemp-ha-files-absent:
  file.absent:
    - names:
      - {{ rsyslog.client.config }}
      - {{ rsyslog.server.config }}
      - {{ rsyslog.server.logrotate }}
      - {{ rsyslog.server.agent_dropin }}
    - require:
      - service: rsyslog-service-dead

rsyslog-packages-removed:
  pkg.purged:
    - pkgs: {{ rsyslog.packages | json }}
    - require:
      - file: rsyslog-lemp-ha-files-absent
