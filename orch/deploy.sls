{#- orch.deploy: rolling deploy of release app:version, one web node at a time,
    without a failed request.

      salt-run state.orchestrate orch.deploy pillar='{"app": {"version": "1.1.0"}}'

    The last step records the release on the master (lemp_web.record_deployed,
    /var/lib/lemp-ha/deployed.json): the next highstate keeps it until
    pillar/app.sls names another version or source, and orch.site spends
    it then (docs/your-app.md).

    The runbook (planned by the runner lemp_web.deploy, _runners/lemp_web.py):
      0. open a Zabbix maintenance window for the web and lb nodes on the
         monitor machine (open-maintenance-window-on-<mon>-for-<hosts>); it
         is closed after the last step, or after a failed one
         (close-maintenance-window-on-<mon>-after-...), and expires by itself;
      1. refuse a bad version before touching any machine (lemp_app.check_version);
      2. unpack the release on every web node, not yet current
         (sync-custom-modules-on-web-and-lb-nodes, unpack-release-<version>-on-all-web-nodes);
      3. migrate the database once, from the first web node
         (migrate-database-for-release-<version>-from-<web>);
      4. for each web node in turn, the rolling step shared with orch.rollback:
         drain it on both load balancers, wait until it has no session, make
         the release current on it, check its /healthz/deep serves the
         release (the node reaches the database: 200, status ok, check deep,
         that release, judged by lemp_healthz.wait; a node in maintenance
         answers 200 and is not healthy), put it back on both load balancers and wait until both see it UP
         (drain-<web>-on-both-lbs, wait-until-<web>-has-no-session-on-both-lbs,
         switch-<web>-to-release-<version>, check-healthz-on-<web>-serves-release-<version>,
         enable-<web>-on-both-lbs, wait-until-<web>-is-up-on-both-lbs);
      5. record the release as deployed, with a fingerprint of the version
         and source pillar/app.sls names
         (record-<app>-release-<version>-as-deployed-on-the-master).
    A failed step stops the run: the node being worked on stays drained (out
    of rotation) and the others keep serving. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- from 'orch/_web.jinja' import app, backend with context %}
{%- set version = salt['lemp_app.check_version'](salt['pillar.get']('app:version', '')) %}
{#- The release's source travels with it: a deploy may name another one. #}
{#- A Zabbix maintenance window covers the web and lb nodes meanwhile;
    pillar='{"maintenance": false}' runs without one (e.g. mon1 is down). #}
{{ steps('lemp_web.deploy', {'version': version, 'backend': backend, 'source': salt['pillar.get']('app:source', {}), 'app_name': app.name, 'maintenance': salt['pillar.get']('maintenance', True)}) }}
