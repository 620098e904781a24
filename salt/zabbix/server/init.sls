{#- Zabbix 6.0 server on mon1: its own MariaDB, the server, the web
    frontend (nginx + PHP-FPM, HTTPS), a local MTA for alert mail, then the
    configuration through the API (users, groups, templates, actions). #}
include:
  - zabbix.server.package
  - zabbix.server.database
  - zabbix.server.config
  - zabbix.server.service
  - zabbix.server.frontend
  - zabbix.server.mail
  - zabbix.server.webhook_receiver
  - zabbix.server.api
  - zabbix.server.ldap
