{#- orch.scale_out: one more web node, from the topology's scaling pool.

      salt-run state.orchestrate orch.scale_out

    The runbook (planned by the runner lemp_scale.out, _runners/lemp_scale.py):
      0. refuse at max (scaling.web.max of pillar/topology.yaml: the fixed web
         machines, the enrolled pool nodes and any pool VM booting count),
         before anything is touched;
      1. record the decision in /var/log/lemp-ha/scaling.log and in Zabbix
         (record-scale-out-of-<node>-in-the-scaling-log-and-zabbix);
      2. boot the lowest free pool name through the cloud minion
         (boot-<node>-through-the-cloud-minion-<minion>: lemp_labcloud.up on
         labhost in the lab, pillar scaling:cloud);
      3. wait until the node's own start event has enrolled it
         (wait-until-<node>-is-enrolled-by-its-start-event): orch.enrol,
         started by the reactor, highstates it, waits for /healthz/deep and puts
         it in service on both load balancers. A failed enrolment fails this
         step with orch.enrol's reason; the slot stays disabled.
    Nothing here adds the node to HAProxy: only enrolment does, so a VM
    booted by hand (vagrant up web3) and one booted here join the same way. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- from 'orch/_scaling.jinja' import scaling with context %}
{{ steps('lemp_scale.out', {'settings': scaling}) }}
