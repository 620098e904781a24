{#- orch.site: bring the whole platform to its declared state.
    Run on the master:  salt-run state.orchestrate orch.site
    Safe to re-run: a second run changes nothing and restarts nothing.

    The runbook, in order:
      1. give every minion our custom modules and fresh pillar;
      2. refuse a bad topology before touching any machine; spend the
         deployed-release record of orch.deploy/orch.rollback once
         pillar/app.sls has moved away from the version and source it
         named then (or the app was renamed), so that reverting the pillar
         later does not bring the recorded release back
         (spend-deployed-release-records-pillar-app-moved-away-from, planned
         by the runner lemp_web.spend; _modules/lemp_release.py);
      3. configure the master: salt/master writes its configuration
         (reactor, ACLs), checked before it lands; the master restarts onto
         it by itself once this run is over (salt/master/service.sls);
      4. the database tier: packages and config, then form (or join) the
         Galera cluster one node at a time; never bootstrap a second cluster;
      5. the web tier, then publish the web nodes in the mine; once every
         web node's release config connects to MySQL over TLS, the app's
         runtime account gets REQUIRE SSL (not before: an upgrade would
         refuse the running app's plain connections in between);
      6. the load balancers, whose backends come from that mine, then the
         app's schema migration, once, through the database endpoint they serve;
      7. monitoring: mon1's Zabbix server, last. The agents (in `common`,
         so already on every machine) retry until it answers, and register
         themselves once mon1 knows their PSK (salt/zabbix/server/api.sls).
         Not beside the other tiers: it needs nothing from them, but on the
         lab's 2 cores every tier is CPU-bound, and run in parallel (tried,
         CI rehearsal) it slowed them all and still ended last: 373 s for
         the first run against 350 s in order.
    Each tier requires the one before: the run stops at the first failure. #}
{#- The tiers, the master and the web members come from the derived
    topology (pillar `topology`, built from pillar/topology.yaml and
    pillar/roles.yaml, where each role names its tier). #}
{%- set topology = salt['pillar.get']('topology') %}
{%- set master = topology.master %}
{%- set web = topology.roles.web.members | map(attribute='name') | list %}
{%- from 'orch/_plan.jinja' import steps with context %}
{%- from 'orch/_web.jinja' import app with context %}

{%- macro tier(name, after) %}
{%- set members = topology.tiers.get(name, []) | sort %}
{%- if members %}

apply-highstate-on-{{ name }}-tier:
  salt.state:
    - tgt: {{ members | join(',') }}
    - tgt_type: list
    - highstate: True
    - require:
      - {{ after }}
{%- else %}

apply-highstate-on-{{ name }}-tier:
  test.nop:
    - require:
      - {{ after }}
{%- endif %}
{%- endmacro %}

include:
  - orch.galera.site

{#- Every minion but the lab host's cloud engine (tools/lab/labhost.sh),
    which loads only lemp_labcloud and test, never synced code. #}
sync-custom-modules-and-pillar-everywhere:
  salt.function:
    - name: saltutil.sync_all
    - tgt: '* and not labhost'
    - tgt_type: compound

validate-topology-before-touching-any-machine:
  salt.function:
    - name: lemp_topology.check
    - tgt: {{ master }}
    - require:
      - salt: sync-custom-modules-and-pillar-everywhere
{{ steps('lemp_web.spend', {'app_name': app.name, 'after': 'validate-topology-before-touching-any-machine'}) }}
{{ tier('master', 'spend-deployed-release-records-pillar-app-moved-away-from') }}
{{ tier('database', 'apply-highstate-on-master-tier') }}
{#- orch.galera.site (included above) forms the cluster after the database
    tier and ends with `galera-cluster-ready`. #}
{{ tier('web', 'galera-cluster-ready') }}

{#- On a Synced data node (Galera replicates the account); a node that is not
    Synced skips, saying so (_states/galera.py). #}
require-tls-for-the-app-database-account:
  salt.state:
    - tgt: {{ (topology.roles.db.members | map(attribute='name') | list | first) or master }}
    - sls: galera.databases
    - pillar: {app_db_require_ssl: True}
    - require:
      - apply-highstate-on-web-tier

publish-web-nodes-in-the-mine:
  salt.function:
    - name: mine.update
    - tgt: {{ (web | join(',')) or master }}
    - tgt_type: list
    - require:
      - apply-highstate-on-web-tier
{{ tier('load-balancers', 'salt: publish-web-nodes-in-the-mine') }}
{%- if web %}

{#- Once per release, on one node: the schema is shared by all of them. #}
migrate-app-schema-once-on-{{ web[0] }}:
  salt.state:
    - tgt: {{ web[0] }}
    - sls: webapp.migrate
    - require:
      - apply-highstate-on-load-balancers-tier
{%- endif %}
{{ tier('monitoring', 'apply-highstate-on-load-balancers-tier') }}
