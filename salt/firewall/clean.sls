{#- Undo salt/firewall: the machine accepts everything again. Stopping
    Debian's unit flushes the whole ruleset (ExecStop); the table is then
    deleted in case the unit was not the one that loaded it. The package
    stays (Debian's default). #}
{%- from 'firewall/map.jinja' import firewall with context %}

firewall-nftables-service-dead:
  service.dead:
    - name: {{ firewall.service }}
    - enable: False

firewall-nftables-table-{{ firewall.table }}-deleted:
  cmd.run:
    - name: {{ firewall.nft }} delete table inet {{ firewall.table }}
    - onlyif: {{ firewall.nft }} list table inet {{ firewall.table }}
    - require:
      - service: firewall-nftables-service-dead

firewall-nftables-config-file-absent:
  file.absent:
    - name: {{ firewall.config }}
    - require:
      - cmd: firewall-nftables-table-{{ firewall.table }}-deleted

firewall-loaded-stamp-absent:
  file.absent:
    - name: /var/lib/lemp-ha/loaded/{{ firewall.service }}.sha256
