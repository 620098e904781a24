{#- Second half of orch.galera_recover (steps 3-6); run by it after every
    data node was stopped. Not meant to be run alone.

    The runner lemp_galera.recover_positions reads every data node's last
    position (galera.position) and lets galera.choose_bootstrap_node pick the
    node, or refuses with the reason (galera-cluster-ready fails). Then:
    chosen-galera-bootstrap-node-<node> (says why), mark-safe-to-bootstrap-<node>,
    bootstrap-galera-from-<node>, wait-galera-synced-<node>, the others join
    one at a time, the accounts, garbd, galera-cluster-ready. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{{ steps('lemp_galera.recover_positions') }}
