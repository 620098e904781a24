{%- from 'haproxy/map.jinja' import haproxy with context %}
include:
  - haproxy.config

{#- Starts and enables haproxy; no `watch` (lost when the run that wrote a
    file fails before it, issue #9): the next state reloads on content.
    haproxy.cfg itself never lands invalid (check_cmd in config.sls). #}
haproxy-service-running:
  service.running:
    - name: {{ haproxy.service }}
    - enable: True
    - require:
      - sysctl: haproxy-may-bind-the-vip-on-the-backup
      - file: haproxy-config-file-managed
      - file: haproxy-vip-certificate-file-managed
      - file: haproxy-ca-certificate-file-managed

haproxy-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ haproxy.service }}
    - paths: {{ haproxy.loaded.paths | json }}
    - verify_cmd: /usr/sbin/haproxy -c -f {{ haproxy.config }}
    - action: {{ haproxy.loaded.action }}
    # `systemctl reload` returns before the master has loaded the files; a
    # load failure keeps the old configuration running. Record only what the
    # master says it loaded (its journal), else fail and retry next run.
    - confirm_fun: lemp_haproxy.reload_confirmed
    - confirm_kwargs:
        timeout: {{ haproxy.loaded.confirm_timeout }}
        unit: {{ haproxy.service }}
    - require:
      - service: haproxy-service-running
