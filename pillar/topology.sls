{#- The machines, their roles and addresses, from the one topology file. #}
{%- import_yaml 'topology.yaml' as topology %}
topology: {{ topology | json }}
