{%- from 'openldap/map.jinja' import openldap, wanted with context %}
{%- if wanted %}
include:
  - openldap.config

openldap-slapd-service-running:
  service.running:
    - name: {{ openldap.service }}
    - enable: True
    - watch:
      - file: openldap-slapd-listens-on-loopback-only
{%- endif %}
