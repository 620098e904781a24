{#- Watching the watcher (issue #10 item 9): on a machine other than the
    monitor, a systemd timer checks that each Zabbix server answers and
    processes, and mails staff through this machine's own MTA when one stops
    (docs/monitoring.md, "When mon1 is down"). Applied by the role named in
    zabbix:lookup:watchdog:role (pillar/roles.yaml: master). #}
include:
  - zabbix.watchdog.package
  - zabbix.watchdog.config
  - zabbix.watchdog.service
