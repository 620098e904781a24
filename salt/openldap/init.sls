{#- The lab's directory for staff logins (issue #10): slapd on mon1, seeded
    from pillar. Role monitor applies this formula; it does nothing unless
    pillar zabbix:lookup:ldap:lab_directory is true (production uses the
    company's directory instead). #}
include:
  - openldap.package
  - openldap.config
  - openldap.service
  - openldap.seed
