{#- mon1's own MariaDB (loopback only), the zabbix database and account,
    and the schema imported once: only into an empty database, so a second
    run (or a database with data) is never imported over. #}
{%- from 'zabbix/map.jinja' import zabbix with context %}
{%- set db = zabbix.server.database %}
{%- do salt['lemp_secret.require']('zabbix:server:db_password') %}
include:
  - zabbix.server.package

zabbix-server-mariadb-config-file-managed:
  file.managed:
    - name: {{ db.config }}
    - contents: |
        # Written by Salt (salt/zabbix/server): Zabbix's own database, local only.
        [mysqld]
        bind-address = 127.0.0.1
        character-set-server = {{ db.charset }}
        collation-server = {{ db.collate }}
        innodb_buffer_pool_size = {{ db.innodb_buffer_pool_size }}
    - mode: '0644'
    - require:
      - pkg: zabbix-server-database-packages-installed

zabbix-server-mariadb-service-running:
  service.running:
    - name: {{ db.service }}
    - enable: True
    - require:
      - file: zabbix-server-mariadb-config-file-managed

zabbix-server-mariadb-runs-its-current-configuration:
  lemp_service.config_loaded:
    - name: {{ db.service }}
    - paths: [{{ db.config }}]
    - action: restart
    - require:
      - service: zabbix-server-mariadb-service-running

zabbix-server-database-{{ db.name }}-present:
  lemp_zabbix.local_database_present:
    - name: {{ db.name }}
    - charset: {{ db.charset }}
    - collate: {{ db.collate }}
    - require:
      - service: zabbix-server-mariadb-service-running

zabbix-server-database-user-{{ db.user }}-present:
  lemp_zabbix.local_user_present:
    - name: {{ db.user }}
    - host: localhost
    - password_pillar: zabbix:server:db_password
    - grants:
        '{{ db.name }}.*': [ALL PRIVILEGES]
    - require:
      - lemp_zabbix: zabbix-server-database-{{ db.name }}-present

{#- pipefail: a missing or broken file fails the state instead of leaving a
    partial schema; a database with tables but no users (an import that
    stopped half-way) is reported, never imported over. #}
zabbix-server-schema-imported-into-empty-database:
  cmd.run:
    - shell: /bin/bash
    - name: >-
        set -o pipefail;
        if [ "$(mariadb -N -B -e "SELECT COUNT(*) FROM information_schema.tables
        WHERE table_schema = '{{ db.name }}'")" != 0 ]; then
        echo "database {{ db.name }} has tables but no Zabbix users: a schema import stopped half-way;
        drop the database (mariadb -e 'DROP DATABASE {{ db.name }}') and apply again" >&2; exit 1; fi;
        zcat {{ zabbix.server.schema_dir }}/schema.sql.gz {{ zabbix.server.schema_dir }}/images.sql.gz
        {{ zabbix.server.schema_dir }}/data.sql.gz | mariadb {{ db.name }}
    - unless: >-
        test "$(mariadb -N -B -e "SELECT COUNT(*) FROM {{ db.name }}.users" 2>/dev/null || echo 0)" -gt 0
    - require:
      - pkg: zabbix-server-packages-installed
      - lemp_zabbix: zabbix-server-database-user-{{ db.user }}-present
