{#- The application's database and account (pillar app:database:*; the
    password is a generated secret, never a default). The account may
    connect from the platform subnet: the app reaches the database through
    the HAProxy DB frontend, so the server sees the load balancers'
    addresses, not the web nodes'. #}
{%- from 'galera/map.jinja' import galera with context %}

include:
  - galera.package
{%- set db = galera.app_database %}
{%- set password = salt['lemp_secret.require']('app:database:password') %}

galera-app-database-{{ db.name }}-present:
  galera.database_present:
    - name: {{ db.name }}
    - charset: {{ db.charset }}
    - collate: {{ db.collate }}
    - require:
      - pkg: galera-packages-installed

galera-app-user-{{ db.user }}-present:
  galera.user_present:
    - name: {{ db.user }}
    - host: {{ galera.subnet_hosts | json }}
    - password: {{ password | json }}
    - grants:
        '{{ db.name }}.*': {{ db.privileges | json }}
    - require:
      - galera: galera-app-database-{{ db.name }}-present
