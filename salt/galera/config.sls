{#- Server and wsrep configuration; TLS files: the platform CA's for client
    connections, the Galera CA's for replication, IST and SST.

    No `watch` restart here, on purpose: restarting a Galera node on every
    config change would restart all nodes at once when the highstate runs on
    the tier (the cluster would lose quorum) and a node restart can trigger a
    full SST. Config changes are applied one node at a time by
    orch.galera_rolling_restart, which waits for Synced between nodes. So a
    highstate writes the files and never restarts MariaDB. #}
{%- from 'galera/map.jinja' import galera with context %}

include:
  - galera.package
{#- The TLS files come from the pillar (contents_pillar): check they are
    there before anything is written. #}
{%- for key in ('tls:ca_cert', 'tls:db_endpoint:cert', 'tls:db_endpoint:key') %}{% do salt['lemp_secret.require'](key) %}{% endfor %}
{#- Galera's own TLS files: from the dedicated Galera CA (galera:tls), or
    at a step of a move between CAs a bundle of both (galera:lookup:tls:stage;
    _modules/galera.py decides which pillar keys). #}
{%- set tls_sources = salt['galera.tls_sources'](galera.tls.stage) %}
{%- set trusted = [] %}
{%- for key in tls_sources.ca %}{% do trusted.append(salt['lemp_secret.require'](key)) %}{% endfor %}
{%- for key in (tls_sources.cert, tls_sources.key) %}{% do salt['lemp_secret.require'](key) %}{% endfor %}
{%- if not galera.address %}
{{-   raise('galera: ' ~ grains['id'] ~ ' is not in the topology (pillar/topology.yaml): no address to bind') }}
{%- endif %}
{%- set cnf = galera.copy() %}
{%- do cnf.pop('app_database') %}
{%- do cnf.update({'sst_password': salt['lemp_secret.require']('galera:sst_password')}) %}

galera-ssl-directory-present:
  file.directory:
    - name: {{ galera.ssl_dir }}
    - user: root
    - group: mysql
    - mode: '0750'
    - require:
      - pkg: galera-packages-installed

galera-ssl-ca-cert-managed:
  file.managed:
    - name: {{ galera.ssl_dir }}/ca.pem
    - contents_pillar: tls:ca_cert
    - user: root
    - group: mysql
    - mode: '0644'
    - require:
      - file: galera-ssl-directory-present

{#- The certificate MariaDB shows its clients (server-cert.pem, the path
    galera.cnf has always named, so FLUSH SSL below switches it without a
    restart): the DB endpoint's (pillar tls:db_endpoint, subjectAltName the
    internal VIP), the same on every data node, so that the app, which
    connects to the internal VIP, can check the server's name. #}
galera-ssl-endpoint-cert-managed:
  file.managed:
    - name: {{ galera.ssl_dir }}/server-cert.pem
    - contents_pillar: tls:db_endpoint:cert
    - user: root
    - group: mysql
    - mode: '0644'
    - require:
      - file: galera-ssl-directory-present

galera-ssl-endpoint-key-managed:
  file.managed:
    - name: {{ galera.ssl_dir }}/server-key.pem
    - contents_pillar: tls:db_endpoint:key
    - user: root
    - group: mysql
    - mode: '0640'
    - show_changes: False
    - require:
      - file: galera-ssl-directory-present

{#- A new client certificate (or CA) takes effect without a restart:
    FLUSH SSL reloads ssl_ca/ssl_cert/ssl_key (MariaDB 10.4+); sessions
    already open keep theirs. Only while the server runs; a stopped one
    reads the files when it starts. #}
galera-client-tls-reloaded:
  cmd.run:
    - name: mariadb --connect-timeout=5 -e 'FLUSH SSL'
    - onlyif: systemctl is-active --quiet mariadb
    - onchanges:
      - file: galera-ssl-ca-cert-managed
      - file: galera-ssl-endpoint-cert-managed
      - file: galera-ssl-endpoint-key-managed

{#- Galera's TLS (replication, IST, SST): a certificate of the Galera CA,
    which web and LB machines do not have, and the bundle of the CAs a
    peer's certificate must come from. #}
galera-tls-ca-bundle-managed:
  file.managed:
    - name: {{ galera.ssl_dir }}/{{ galera.tls.ca_file }}
    - contents: {{ salt['galera.tls_bundle'](trusted) | json }}
    - user: root
    - group: mysql
    - mode: '0644'
    - require:
      - file: galera-ssl-directory-present

galera-tls-node-cert-managed:
  file.managed:
    - name: {{ galera.ssl_dir }}/{{ galera.tls.cert_file }}
    - contents_pillar: {{ tls_sources.cert }}
    - user: root
    - group: mysql
    - mode: '0644'
    - require:
      - file: galera-ssl-directory-present

galera-tls-node-key-managed:
  file.managed:
    - name: {{ galera.ssl_dir }}/{{ galera.tls.key_file }}
    - contents_pillar: {{ tls_sources.key }}
    - user: root
    - group: mysql
    - mode: '0640'
    - show_changes: False
    - require:
      - file: galera-ssl-directory-present

galera-config-file-managed:
  file.managed:
    - name: {{ galera.config_file }}
    - source: salt://galera/files/galera.cnf.jinja
    - template: jinja
    - user: root
    - group: mysql
    # holds the SST password
    - mode: '0640'
    - show_changes: False
    - context:
        galera: {{ cnf | json }}
        node_name: {{ grains['id'] }}
    - require:
      - pkg: galera-packages-installed
      - file: galera-ssl-ca-cert-managed
      - file: galera-ssl-endpoint-cert-managed
      - file: galera-ssl-endpoint-key-managed
      - file: galera-tls-ca-bundle-managed
      - file: galera-tls-node-cert-managed
      - file: galera-tls-node-key-managed
