# Settings of role monitor (mon1): Zabbix configured through its API
# (salt/zabbix/server/api.sls; every key in salt/zabbix/pillar.example).
# Secrets (database, Admin, agents' PSKs) come from the encrypted pillar.
{%- import_yaml 'topology.yaml' as topology %}
zabbix:
  lookup:
    # --- staff access through a directory ---
    # The lab's own directory: slapd on mon1 (salt/openldap), people below;
    # Zabbix and the sync use it (tests/lab/test_monitoring_staff.py).
    ldap:
      lab_directory: true
    server:
      # Lab only: the webhook goes to a receiver on mon1's loopback that logs
      # each POST (tests/lab/test_monitoring_ops.py reads it).
      webhook_receiver: {enabled: true}
      api:
        webhook: {url: 'http://127.0.0.1:8765/zabbix'}
        roles:
          backup:
            macros:
              # Lab only: the archive-lag problem opens after 30 s of lag, not
              # the template's 60 s, so that tests/lab/test_monitoring_backup.py,
              # which stops the archiver to raise it, waits half as long. The
              # lab's archive rotates every 4-10 s (pillar/backup.sls): a
              # working archive lags well under 30 s; a writer failover may
              # raise it briefly, as it may in production at 60 s.
              '{$LEMP.BACKUP.ARCHIVE.LAG.MAX}': 30s
        users:
          # The lab's alert mailbox on mon1 (/var/mail/alerts): problems
          # mailed to group ops reach it; tests/lab/test_monitoring.py's mails()
          # reads it (for test_monitoring_web.py's alert check).
          - username: lab-ops
            name: Lab ops mailbox
            groups: [ops]
            role: Admin role
            # Zabbix refuses alerts@localhost; exim on mon1 takes the domain as local
            email: alerts@{{ topology.network.domain }}
# --- logs (item 8): the collector's side of salt/rsyslog (salt/rsyslog/pillar.example) ---
rsyslog:
  lookup:
    server:
      # Every machine's forwarded logs stay this long on mon1 (logrotate, daily).
      retention_days: 14
# The lab directory's people (salt/openldap; passwords: generated secrets
# openldap:passwords:<uid>, pillar/secrets.spec.yaml).
openldap:
  lookup:
    people:
      - uid: lab-staff
        cn: Lab Staff
        mail: lab-staff@{{ topology.network.domain }}
        groups: [staff]
      - uid: lab-operator
        cn: Lab Operator
        mail: lab-operator@{{ topology.network.domain }}
        groups: [ops]
    # --- end staff access through a directory ---
