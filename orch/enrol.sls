{#- orch.enrol: a pool VM whose minion started joins the web tier by itself.

      salt-run state.orchestrate orch.enrol pillar='{"enrol": {"node": "web3"}}'

    Started by the reactor (reactor/web_start.sls) on salt/minion/*/start
    with the authenticated minion id only. The runner lemp_enrol.plan
    (_runners/lemp_enrol.py) decides from that id, the scaling pool
    (pillar/topology.yaml scaling.web.pool), the master's accepted keys and
    the enrolled store:

    - not a pool name with an accepted key (web1, db1, anything else):
      ignore-<id>-not-a-pool-node, nothing changes;
    - a pool node already enrolled (its minion restarted): re-check only:
      sync, mine, /healthz (shallow, as HAProxy) from both load balancers,
      announce. No highstate, no drain, no duplicate;
    - a new pool node, the runbook:
      1. sync-custom-modules-on-<node>-the-lbs-and-the-monitor, refresh-pillar-on-<node>,
         publish-<node>-in-the-mine;
      2. apply-highstate-on-<node>;
      3. wait-for-healthz-of-<node>-from-both-lbs (/healthz/deep: the node
         must reach the database to be enrolled; through the name HAProxy
         verifies, with the lab CA; healthy as lemp_healthz.wait judges it:
         200, status ok, check deep, not maintenance);
      4. record-<node>-enrolled-on-the-master (pillar scaling:enrolled);
      5. render-<node>-slot-enabled-in-haproxy-config-on-both-lbs (a later
         reload keeps it), enable-<node>-on-both-lbs (runtime API, no
         reload), wait-until-<node>-is-up-on-both-lbs;
      6. register-<node>-in-zabbix-on-<monitor> (zabbix.server.api: the
         enrolled pool members are hosts of role web_pool), after HAProxy
         so that the node serves as soon as it can;
      7. announce-<node>-enrolled (event lemp-ha/enrol/done).
    A failed step runs its report-<node>-enrol-failed-at-<step>: the node
    stays out of HAProxy (from step 4 on it is taken back out of the store,
    drained and its slot put back to maintenance, its Zabbix host removed), /var/log/lemp-ha/enrol.log says why, and the event
    lemp-ha/enrol/failed carries {node, step, reason}. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- import_yaml 'haproxy/defaults.yaml' as haproxy_defaults %}
{%- set node = salt['pillar.get']('enrol:node', '') or raise('orch.enrol: pillar enrol:node is missing: pillar=\'{"enrol": {"node": "web3"}}\'') %}
{%- set backend = salt['pillar.get']('haproxy:lookup:web:backend', haproxy_defaults.haproxy.web.backend) %}
{{ steps('lemp_enrol.plan', {'minion_id': node, 'backend': backend, 'ca_file': haproxy_defaults.haproxy.tls_dir ~ '/ca.pem'}) }}
