{#- Undo common.hosts (packages stay: other software may need them). #}
{%- set topology = salt['pillar.get']('topology') %}
{%- for host in topology.hosts | sort(attribute='name') %}

common-hosts-entry-{{ host.name }}-absent:
  host.absent:
    - name: {{ host.name }}
    - ip: {{ host.address }}
{%- endfor %}
