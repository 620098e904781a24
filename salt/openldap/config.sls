{#- slapd listens on loopback and its local socket only (defaults.yaml
    `services`: why). #}
{%- from 'openldap/map.jinja' import openldap, wanted with context %}
{%- if wanted %}
include:
  - openldap.package

openldap-slapd-listens-on-loopback-only:
  file.replace:
    - name: {{ openldap.defaults_file }}
    - pattern: '^SLAPD_SERVICES=.*$'
    - repl: 'SLAPD_SERVICES="{{ openldap.services }}"'
    - append_if_not_found: True
    - require:
      - pkg: openldap-slapd-package-installed
{%- endif %}
