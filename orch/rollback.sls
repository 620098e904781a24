{#- orch.rollback: switch every web node back to the previous release, one
    at a time, the same way as orch.deploy (drain, wait, switch, check,
    enable), without a failed request.

      salt-run state.orchestrate orch.rollback
      salt-run state.orchestrate orch.rollback pillar='{"app": {"rollback_to": "1.0.0"}}'

    The runbook (planned by the runner lemp_web.rollback, _runners/lemp_web.py):
      1. refuse when there is no release to roll back to;
      2. check the release is complete on every web node
         (check-release-<version>-is-complete-on-all-web-nodes);
      3. for each web node in turn, the rolling step of orch.deploy, with
         switch-<web>-back-to-release-<version>;
      4. record the release as deployed on the master
         (record-<app>-release-<version>-as-deployed-on-the-master).

    Without app:rollback_to, the target is the release the first web node's
    `previous` link names. No migration is undone: migrations must stay
    backward compatible (expand, then contract in a later release).
    The record keeps the next highstate on that release until pillar/app.sls
    names another version or source; it holds the release's own source (from
    the record's history of earlier deploys), not pillar/app.sls's. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- from 'orch/_web.jinja' import app, backend, app_dir with context %}
{{ steps('lemp_web.rollback', {'backend': backend, 'app_dir': app_dir, 'rollback_to': salt['pillar.get']('app:rollback_to', ''), 'app_name': app.name}) }}
