{#- The directory's content from pillar (openldap:lookup): OUs, the
    read-only bind account, people ({SSHA} of their generated passwords) and
    the groups staff and ops. _modules/lemp_zabbix_ldap.py decides what to
    add or correct; it never deletes (the lab test removes a person by hand
    and puts them back). #}
{%- from 'openldap/map.jinja' import openldap, wanted with context %}
{%- if wanted %}
{%- do salt['lemp_secret.require']('openldap:admin_password') %}
{%- do salt['lemp_secret.require']('zabbix:ldap:bind_password') %}
{%- for person in openldap.people %}
{%-   do salt['lemp_secret.require']('openldap:passwords:' ~ person.uid) %}
{%- endfor %}
include:
  - openldap.service

openldap-lab-directory-seeded-from-pillar:
  lemp_zabbix_ldap.lab_directory_seeded:
    - require:
      - service: openldap-slapd-service-running
{%- endif %}
