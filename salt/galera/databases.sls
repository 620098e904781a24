{#- The application's database and its two accounts (pillar app:database:*;
    _modules/galera.py app_accounts checks the privilege names at render):
      - the runtime account (app:database:user), what config.php holds:
        data only (app:database:privileges, DML by default);
      - the migration account (app:database:migrate_user, default
        <user>_migrate), what app:migrate runs as: the runtime's privileges
        plus the schema ones (app:database:migrate_privileges).
    Passwords are generated secrets, never defaults. Both accounts may
    connect from the platform subnet: the app reaches the database through
    the HAProxy DB endpoint, so the server sees the load balancers'
    addresses, not the web nodes'.

    REQUIRE SSL: the migration account always (it only exists with the code
    that connects over TLS). The runtime account: left as it is by a
    highstate (require_ssl None); orch.site sets it after the web tier has
    the release config that connects over TLS (pillar
    app_db_require_ssl=True, step require-tls-for-the-app-database-account),
    so an upgrade never refuses the running app mid-run.

    A rotation of app_db (orch.rotate_secret, docs/secrets.md) puts the old
    password beside the new one (app:database:password_previous): the
    runtime account accepts either until the web tier holds the new one;
    the rotation's last step removes it and applies this again. #}
{%- from 'galera/map.jinja' import galera with context %}

include:
  - galera.package
{%- set db = galera.app_database %}
{%- set accounts = salt['galera.app_accounts'](db) %}
{%- set password = salt['lemp_secret.require']('app:database:password') %}
{%- set previous_password = salt['lemp_secret.previous']('app:database:password') %}
{%- set migrate_password = salt['lemp_secret.require']('app:database:migrate_password') %}

galera-app-database-{{ db.name }}-present:
  galera.database_present:
    - name: {{ db.name }}
    - charset: {{ db.charset }}
    - collate: {{ db.collate }}
    - require:
      - pkg: galera-packages-installed

galera-app-user-{{ accounts.runtime.user }}-present:
  galera.user_present:
    - name: {{ accounts.runtime.user }}
    - host: {{ galera.subnet_hosts | json }}
    - password: {{ password | json }}
    - previous_password: {{ previous_password | json }}
    - grants:
        '{{ db.name }}.*': {{ accounts.runtime.privileges | json }}
    - require_ssl: {{ (True if salt['pillar.get']('app_db_require_ssl', False) else None) | json }}
    - require:
      - galera: galera-app-database-{{ db.name }}-present

galera-app-migration-user-{{ accounts.migrate.user }}-present:
  galera.user_present:
    - name: {{ accounts.migrate.user }}
    - host: {{ galera.subnet_hosts | json }}
    - password: {{ migrate_password | json }}
    - grants:
        '{{ db.name }}.*': {{ accounts.migrate.privileges | json }}
    - require_ssl: True
    - require:
      - galera: galera-app-database-{{ db.name }}-present
