{#- orch.scale_in: one web node fewer, without a failed request.

      salt-run state.orchestrate orch.scale_in pillar='{"node": "web3"}'
      salt-run state.orchestrate orch.scale_in        # the highest enrolled pool node

    The runbook (planned by the runner lemp_scale.in, _runners/lemp_scale.py):
      0. refuse a fixed machine of the topology, a name outside the pool, and
         going below scaling.web.min, before anything is touched;
      1. record the decision (record-scale-in-of-<node>-in-the-scaling-log-and-zabbix);
      2. drain it on both load balancers and wait until it has no session
         (drain-<node>-on-both-lbs, wait-until-<node>-has-no-session-on-both-lbs);
      3. disable its slot at runtime, take it out of the enrolled store, and
         render the slot disabled in both HAProxy configs, so that a reload
         keeps it out (disable-<node>-slot-on-both-lbs-at-runtime,
         remove-<node>-from-the-enrolled-store,
         render-<node>-slot-disabled-in-the-haproxy-config-on-both-lbs);
      4. destroy the VM through the cloud minion, remove its Zabbix host
         once its agent is gone, then delete its key
         (destroy-<node>-through-the-cloud-minion-<minion>,
         remove-<node>-host-from-zabbix-on-<mon>,
         delete-<node>-minion-key-on-the-master): the key goes last, so the
         pool name is not free again while its VM may still run.
    A failed step stops the run; the steps before it hold (a drained node
    stays out of rotation) and a re-run takes the node from where it is. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- from 'orch/_scaling.jinja' import scaling, backend with context %}
{{ steps('lemp_scale.in', {'settings': scaling, 'node': salt['pillar.get']('node', '') or none, 'backend': backend}) }}
