{%- from 'firewall/map.jinja' import firewall with context %}

firewall-nftables-package-installed:
  pkg.installed:
    - name: {{ firewall.package }}
