{%- from 'rsyslog/map.jinja' import rsyslog with context %}

rsyslog-packages-installed:
  pkg.installed:
    - pkgs: {{ rsyslog.packages | json }}
