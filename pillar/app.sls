{#- The application the web tier runs (salt/webapp); roles web and master
    (orch.deploy reads it). Secret: app:database:password (secrets pillar). #}
{%- import_yaml 'topology.yaml' as topology %}
app:
  name: app
  version: 1.0.0
  source:
    path: salt://app
  docroot: public
  migrate: php bin/migrate.php
  uploads_dir: /srv/www-uploads
  database:
    host: {{ topology.network.vip }}
    port: 3306
    name: app
    user: app
