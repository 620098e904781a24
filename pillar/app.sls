{#- The application the web tier runs (salt/webapp); roles web and master
    (orch.deploy reads it). Secret: app:database:password (secrets pillar). #}
{#- Network fields only (never roles or machines): a pillar file cannot read
    the `topology` key, and these are plain values of pillar/topology.yaml
    that pillar/topology.sls validates and passes on unchanged. #}
{%- import_yaml 'topology.yaml' as topology %}
app:
  name: app
  version: 1.1.0
  source:
    path: salt://app
  docroot: public
  migrate: php bin/migrate.php
  uploads_dir: /srv/www-uploads
  database:
    host: {{ topology.network.internal_vip }}
    port: 3306
    name: app
    user: app
