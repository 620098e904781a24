{#- orch.rotate_secret: replace a password by a new one without a failed
    request (docs/secrets.md "Rotation").

      salt-run state.orchestrate orch.rotate_secret pillar='{"secret": "app_db"}'

    The new value is the operator's, GPG-armored, when
    /srv/lemp-ha-secrets/rotation/<secret>.asc is there (encrypted to the
    pillar key like any value), else a random one; no plain value is ever
    written on the master or printed. Rotatable now: app_db (the app's
    runtime database account), the Redis users' passwords redis_sessions,
    redis_check, redis_sentinel, redis_monitor, redis_admin,
    redis_replication, Sentinel's own sentinel_auth, and the Zabbix
    agents' PSKs zabbix_psk (the table ROTATIONS in
    _runners/lemp_secrets.py, docs/secrets.md "Per secret"). Any other
    name is refused.

      salt-run state.orchestrate orch.rotate_secret pillar='{"secret": "zabbix_psk"}'
      salt-run state.orchestrate orch.rotate_secret pillar='{"secret": "zabbix_psk", "machine": "web1"}'

    zabbix_psk is one key per machine, and neither the agent nor the
    server can accept two: so no step 3 below, but one machine after the
    other (every machine, or `machine` alone), each inside a Zabbix
    maintenance window for its host (open-maintenance-window-on-<mon>-for-<machine>,
    as orch.deploy opens one): stage its new key (its file, with the old
    one beside it, and the monitor's agent_psks), refresh their pillar,
    the server's host takes it through the API and the server reloads its
    configuration cache (<mon>-gives-the-zabbix-host-<machine>-its-new-zabbix_psk),
    then the agent (PSK file, restart: give-the-new-zabbix_psk-to-the-agent-on-<machine>),
    then wait until the server has the new agent's heartbeat and its
    nodata problem, if it fired, is resolved (wait-until-<mon>-has-the-heartbeat-...),
    drop the old key, close the window. The agent's checks fail for the
    seconds between the two; the window keeps that from firing a problem.

    The runbook (planned by the runner lemp_secrets.plan, _runners/lemp_secrets.py):
      0. refuse before touching anything: an unknown secret, a secret this
         cannot rotate yet, a minion that does not answer, a data node not
         Synced, a web node out of service on a load balancer
         (rotation-refused-nothing-was-touched);
      1. sync the custom modules on every machine holding the secret
         (pillar/roles.yaml `secrets:`);
      2. stage: in the encrypted pillar file of each of them, the new value
         at the secret's key and the old one beside it at <key>_previous
         (stage-the-new-<secret>-beside-the-old-in-the-encrypted-pillar); a
         run that died after this resumes with the same new value; then
         refresh their pillar;
      3. the server accepts the old OR the new value: galera.databases on
         one Synced data node, Galera replicates the account to the others
         (<db>-accepts-the-old-or-the-new-<secret>); for a Redis user,
         redis.acl on every Redis node (two hashes, ACL SETUSER); for
         sentinel_auth, redis.sentinel_accepts on every Sentinel (live);
      4. every client gets the new value: webapp.release on the web nodes
         rewrites the current release's config.php (give-the-new-<secret>-to-its-clients);
         PHP reads it on its next request once opcache revalidates the file
         (wait-<n>s-for-opcache-...: revalidate_freq + 1 s, read from each
         node's opcache ini), or after a reload of PHP-FPM where opcache
         never revalidates (reload-php-fpm-on-<web>-...); a Redis user's
         clients: PHP one web node at a time out of both LBs
         (drain-<web>-..., give-the-new-<secret>-to-<web>), HAProxy and the
         Sentinels one machine at a time, masterauth on every Redis node
         together (redis.replication: CONFIG SET, no restart);
      5. drop the old value from the encrypted pillar, refresh the pillar,
         and the server accepts only the new one
         (<db>-accepts-only-the-new-<secret>).
    A failed step stops the run with both values accepted (after step 3) and
    the old one still in the pillar: fix the cause and run it again; it
    resumes with the same new value. #}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- from 'orch/_web.jinja' import backend with context %}
{{ steps('lemp_secrets.plan', {'secret': salt['pillar.get']('secret', ''), 'backend': backend, 'machine': salt['pillar.get']('machine', '')}) }}
