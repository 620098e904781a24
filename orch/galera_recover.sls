{#- orch.galera_recover: bring the Galera cluster back after a full outage
    (every data node down: clean shutdowns, crashes, SIGKILL, power loss).
    Run on the master:  salt-run state.orchestrate orch.galera_recover

    The runbook:
      1. ask every data node for its state. If a Primary component still
         runs, there is nothing to recover: the missing nodes are joined to
         it (same as orch.galera.bootstrap). If a node does not answer,
         refuse: it may hold the latest transactions.
      2. stop MariaDB on every data node (nodes stuck trying to join);
      3. (orch.galera.recover_positions) read every node's last position
         (grastate.dat; `--wsrep-recover` when it crashed), choose the node
         to bootstrap with galera.choose -- safe_to_bootstrap=1, else the
         highest seqno, ties by name -- or refuse with the reason (a node
         unreadable, different cluster uuids, ...);
      4. mark the chosen node safe_to_bootstrap, bootstrap it, wait Synced;
      5. join the other nodes one at a time (IST/SST), each waiting Synced;
      6. start garbd, wait until every member is back. #}
{%- from 'orch/galera/lib.jinja' import members, survey, refuse, join_and_finish with context %}
{%- set m = members() | load_json %}
{%- set s = survey(m.dbs) | load_json %}
{%- set summary = s.detail | dictsort | map('join', ': ') | join('; ') %}
{%- if not m.dbs %}
{{ refuse('galera-cluster-ready', 'the topology has no db machine: nothing to recover') }}
{%- elif s.uuids | length > 1 %}
{{ refuse('galera-cluster-ready', 'refusing: data nodes are Primary in different clusters (' ~ s.uuids | join(', ') ~ '): fix by hand. ' ~ summary) }}
{%- elif s.primary %}
{#- Step 1: a Primary component runs, so only join the others. #}
{{ join_and_finish(m.dbs, s.synced, s.synced[0] if s.synced else s.primary[0], m.arbs, (m.dbs | length) + (m.arbs | length)) }}
{%- elif s.unknown %}
{{ refuse('galera-cluster-ready', 'refusing to recover: no usable answer from ' ~ s.unknown | join(', ') ~ ' (they may hold the latest transactions); bring their minions back first. ' ~ summary) }}
{%- else %}
{%- for name in m.dbs %}

stop-mariadb-on-{{ name }}:
  salt.function:
    - name: galera.stop
    - tgt: {{ name }}
{%- endfor %}

{#- Steps 3-6, rendered only now: the positions are read after the stops. #}
recover-galera-from-the-most-advanced-node:
  salt.runner:
    - name: state.orchestrate
    - mods: orch.galera.recover_positions
    - require:
{%- for name in m.dbs %}
      - salt: stop-mariadb-on-{{ name }}
{%- endfor %}
{%- endif %}
