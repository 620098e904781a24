{#- Every machine knows every other by name: the lab has no DNS, and
    production should not depend on it for the cluster's own traffic. #}
{%- set topology = salt['pillar.get']('topology') %}
{%- for host in topology.hosts | sort(attribute='name') %}

common-hosts-entry-{{ host.name }}-present:
  host.only:
    - name: {{ host.address }}
    - hostnames:
      - {{ host.name }}.{{ topology.network.domain }}
      - {{ host.name }}
{%- endfor %}

{#- Debian maps a machine's own name to 127.0.1.1 when it has no fixed
    address; ours have one, and services must not bind to loopback by name. #}
common-hosts-own-name-not-on-loopback:
  host.absent:
    - name: {{ grains['id'] }}
    - ip: 127.0.1.1

{#- The lab's box has no localhost line at all (seen in the lab: Zabbix's
    mail to the local MTA failed with "cannot resolve [localhost]"). #}
common-hosts-localhost-present:
  host.present:
    - name: localhost
    - ip: 127.0.0.1

common-hosts-localhost-ipv6-present:
  host.present:
    - names: [localhost, ip6-localhost, ip6-loopback]
    - ip: '::1'
