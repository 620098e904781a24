{#- What this machine forwards: lemp_logs.client_inputs picks the log
    files of its roles (pillar rsyslog:lookup:client:files). #}
{%- from 'rsyslog/map.jinja' import rsyslog, collector, me with context %}
{%- set client = rsyslog.client %}
{%- set inputs = salt['lemp_logs.client_inputs'](me.get('roles', []), client.files) %}
{%- from 'haproxy/map.jinja' import haproxy as lb with context %}
{#- HAProxy logs to <chroot><log.socket> (salt/haproxy); rsyslog makes it. #}
{%- set haproxy = {'socket': lb.chroot ~ lb.log.socket} if 'lb' in me.get('roles', []) else None %}
{%- if not collector %}
{{-   raise('rsyslog: the topology has no machine with role monitor to collect the logs (pillar/topology.yaml)') }}
{%- endif %}
include:
  - rsyslog.package
  - rsyslog.service

rsyslog-forward-to-collector-config-file-managed:
  file.managed:
    - name: {{ client.config }}
    - source: salt://rsyslog/files/client.conf.j2
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    - context:
        collector: {{ collector | json }}
        port: {{ rsyslog.server.port | int }}
        queue: {{ client.queue | json }}
        inputs: {{ inputs | json }}
        haproxy: {{ haproxy | json }}
    - require:
      - pkg: rsyslog-packages-installed
    - require_in:
      - lemp_service: rsyslog-runs-its-current-configuration
