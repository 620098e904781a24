{%- from 'firewall/map.jinja' import firewall with context %}
include:
  - firewall.config

{#- Loads the rules at boot, before the network comes up (Debian's unit). No
    `watch`: the next state applies a changed file on content. #}
firewall-nftables-service-running:
  service.running:
    - name: {{ firewall.service }}
    - enable: True
    - require:
      - file: firewall-nftables-config-file-managed

firewall-nftables-runs-its-current-rules:
  lemp_service.config_loaded:
    - name: {{ firewall.service }}
    - paths: {{ firewall.loaded.paths | json }}
    - verify_cmd: {{ firewall.nft }} -c -f {{ firewall.config }}
    - action: {{ firewall.loaded.action }}
    - require:
      - service: firewall-nftables-service-running

{#- The stamp says the file was loaded, but the table can still be gone (an
    `nft flush ruleset` by hand, a package's script): then the machine runs
    with no firewall while the unit says active. Load the file again. #}
firewall-nftables-table-{{ firewall.table }}-loaded:
  cmd.run:
    - name: {{ firewall.nft }} -f {{ firewall.config }}
    - unless: {{ firewall.nft }} list table inet {{ firewall.table }}
    - require:
      - lemp_service: firewall-nftables-runs-its-current-rules
