{#- /etc/nftables.conf: the rules lemp_firewall.ruleset derives for this
    machine (Python decides what is open; the template only writes it).
    check_cmd: a file nft cannot load never lands, so a reload or a boot
    never meets a broken file. #}
{%- from 'firewall/map.jinja' import firewall with context %}
{%- set rules = salt['lemp_firewall.ruleset'](grains['id'], firewall.admin_networks) %}
include:
  - firewall.package

firewall-nftables-config-file-managed:
  file.managed:
    - name: {{ firewall.config }}
    - source: salt://firewall/files/nftables.conf.j2
    - template: jinja
    - user: root
    - group: root
    - mode: '0640'
    - context:
        firewall: {{ firewall | json }}
        rules: {{ rules | json }}
    - check_cmd: {{ firewall.nft }} -c -f
    - require:
      - pkg: firewall-nftables-package-installed
