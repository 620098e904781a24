{#- Run app:migrate in release app:version, once: orch.deploy targets only
    the first web node, before any node switches; highstate runs it only on
    the first web node too (webapp/init.sls). It runs as the migration
    account (schema rights), which config.php never holds: its user and
    password come in the environment, LEMP_DB_MIGRATE_USER and
    LEMP_DB_MIGRATE_PASSWORD (docs/your-app.md). The migration itself must be
    idempotent (the sample app's is: CREATE TABLE IF NOT EXISTS and a
    schema_migrations table); the marker file saves a re-run on this node. #}
{%- from 'webapp/map.jinja' import app, release_dir, version, checked with context %}
include:
  - webapp.release
{%- if app.migrate %}

webapp-{{ app.name }}-release-{{ version }}-migrated:
  cmd.run:
    - name: {{ app.migrate | json }}
    - cwd: {{ release_dir }}
    - runas: {{ app.user }}
    - env:
        LEMP_DB_MIGRATE_USER: {{ checked.db_migrate_user | json }}
        LEMP_DB_MIGRATE_PASSWORD: {{ salt['lemp_secret.require']('app:database:migrate_password') | json }}
    - creates: {{ release_dir }}/.lemp-ha-migrated
    - require:
      - file: webapp-{{ app.name }}-release-{{ version }}-marked-complete

webapp-{{ app.name }}-release-{{ version }}-migration-marker-present:
  file.managed:
    - name: {{ release_dir }}/.lemp-ha-migrated
    - contents: migrated
    - replace: False
    - require:
      - cmd: webapp-{{ app.name }}-release-{{ version }}-migrated
{%- endif %}
