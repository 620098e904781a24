{#- Undo common.hosts (packages stay: other software may need them). #}
{%- set topology = salt['pillar.get']('topology') %}
{%- for name, machine in topology.machines | dictsort %}

common-hosts-entry-{{ name }}-absent:
  host.absent:
    - name: {{ name }}
    - ip: {{ machine.address }}
{%- endfor %}
