{#- orch.autoscale: a scaling request from Zabbix, judged then carried out.
    Started by reactor/scale_request.sls on the event lemp-ha/scale/request,
    with the sender's authenticated minion id and the direction it asked:

      pillar='{"scale_request": {"sender": "mon1", "direction": "out"}}'

    The runbook (planned by the runner lemp_scale.autoscale, _runners/lemp_scale.py):
      1. decide (lemp_scale.decide): the sender must be a monitor-role
         machine, the direction out or in, autoscaling on (pillar
         scaling:autoscale:enabled), the last scaling action either way older
         than the cooldown (pillar scaling:cooldown), and the tier between
         min and max (pillar/topology.yaml scaling.web);
      2. record the decision, acted on or not, in
         /var/log/lemp-ha/scaling.log and in Zabbix (item lemp.scale.decision
         of the master's host): record-scale-<out|in>-of-<node>-... or
         record-refused-scale-<direction>-..., then no-scaling-<direction>;
      3. the steps of orch.scale_out or orch.scale_in for the node chosen.
    Two requests planned at once: the second one's record step fails (the
    first one's action is within its cooldown) before it touches anything. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- from 'orch/_scaling.jinja' import scaling, backend with context %}
{%- set request = salt['pillar.get']('scale_request', {}) %}
{{ steps('lemp_scale.autoscale', {'settings': scaling, 'direction': request.get('direction', ''), 'sender': request.get('sender', ''), 'backend': backend}) }}
