{#- Remove the lab directory (and its data: the lab's people only). #}
{%- from 'openldap/map.jinja' import openldap with context %}
openldap-slapd-service-dead:
  service.dead:
    - name: {{ openldap.service }}
    - enable: False

openldap-slapd-package-purged:
  pkg.purged:
    - pkgs: {{ openldap.packages | json }}
    - require:
      - service: openldap-slapd-service-dead
