{#- Every machine knows every other by name: the lab has no DNS, and
    production should not depend on it for the cluster's own traffic. #}
{%- set topology = salt['pillar.get']('topology') %}
{%- for name, machine in topology.machines | dictsort %}

common-hosts-entry-{{ name }}-present:
  host.only:
    - name: {{ machine.address }}
    - hostnames:
      - {{ name }}.{{ topology.network.domain }}
      - {{ name }}
{%- endfor %}

{#- Debian maps a machine's own name to 127.0.1.1 when it has no fixed
    address; ours have one, and services must not bind to loopback by name. #}
common-hosts-own-name-not-on-loopback:
  host.absent:
    - name: {{ grains['id'] }}
    - ip: 127.0.1.1
