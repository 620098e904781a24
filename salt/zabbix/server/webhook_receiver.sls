{#- Lab only: a receiver for the webhook media type on mon1, which logs the
    body of each POST (one JSON line) to a file the lab tests read. Off
    unless pillar zabbix:lookup:server:webhook_receiver:enabled is true
    (pillar/monitor.sls sets it for the lab); off, it is removed. A real
    site points zabbix:lookup:server:api:webhook:url at its chat or pager. #}
{%- from 'zabbix/map.jinja' import zabbix with context %}
{%- set rx = zabbix.server.webhook_receiver %}
{%- set unit = '/etc/systemd/system/' ~ rx.service ~ '.service' %}
{%- if rx.enabled %}

zabbix-webhook-receiver-script-file-managed:
  file.managed:
    - name: {{ rx.script }}
    - source: salt://zabbix/server/files/webhook_receiver.py
    - mode: '0755'
    - makedirs: True

zabbix-webhook-receiver-unit-file-managed:
  file.managed:
    - name: {{ unit }}
    - contents: |
        # Written by Salt (salt/zabbix/server/webhook_receiver.sls). Lab only.
        [Unit]
        Description=lemp-ha lab webhook receiver (logs POST bodies)
        After=network.target
        [Service]
        ExecStart=/usr/bin/python3 {{ rx.script }} --port {{ rx.port }} --log /var/log/{{ rx.service }}/posts.jsonl
        DynamicUser=yes
        LogsDirectory={{ rx.service }}
        LogsDirectoryMode=0755
        ProtectSystem=strict
        ProtectHome=yes
        PrivateTmp=yes
        NoNewPrivileges=yes
        Restart=on-failure
        [Install]
        WantedBy=multi-user.target

zabbix-webhook-receiver-service-running:
  service.running:
    - name: {{ rx.service }}
    - enable: True
    - watch:
      - file: zabbix-webhook-receiver-script-file-managed
      - file: zabbix-webhook-receiver-unit-file-managed
{%- else %}

zabbix-webhook-receiver-service-dead:
  service.dead:
    - name: {{ rx.service }}
    - enable: False

zabbix-webhook-receiver-files-absent:
  file.absent:
    - names:
      - {{ rx.script }}
      - {{ unit }}
    - require:
      - service: zabbix-webhook-receiver-service-dead
{%- endif %}
