{#- slapd installed without questions: debconf preseeded with the domain and
    the administrator's password (a generated secret) before the first
    install only; later runs leave debconf alone (slapd's postinst does not
    read it again, and the password would be reported as a change). #}
{%- from 'openldap/map.jinja' import openldap, wanted with context %}
{%- if wanted %}
{%- set admin_password = salt['lemp_secret.require']('openldap:admin_password') %}
openldap-debconf-utils-package-installed:
  pkg.installed:
    - pkgs: {{ openldap.preseed_packages | json }}

openldap-slapd-debconf-preseeded-before-first-install:
  debconf.set:
    - name: slapd
    - data:
        'slapd/no_configuration': {type: boolean, value: false}
        'slapd/domain': {type: string, value: {{ openldap.domain | json }}}
        'shared/organization': {type: string, value: {{ openldap.organization | json }}}
        'slapd/password1': {type: password, value: {{ admin_password | json }}}
        'slapd/password2': {type: password, value: {{ admin_password | json }}}
        'slapd/purge_database': {type: boolean, value: false}
        'slapd/move_old_database': {type: boolean, value: true}
    - unless: dpkg-query -W -f='${Status}' slapd 2>/dev/null | grep -q 'install ok installed'
    - require:
      - pkg: openldap-debconf-utils-package-installed

openldap-slapd-package-installed:
  pkg.installed:
    - pkgs: {{ openldap.packages | json }}
    - require:
      - debconf: openldap-slapd-debconf-preseeded-before-first-install
{%- endif %}
