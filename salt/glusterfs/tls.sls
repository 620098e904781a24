{#- TLS for the uploads volume, on every server and client of it (with
    glusterfs:lookup:tls:enabled): the machine's own lab-CA certificate and
    key, and the CA, where gluster reads them (fixed paths), and
    secure-access, which turns TLS on for management (glusterd, and a
    client's fetch of the volume file). The volume's own options
    (client.ssl, server.ssl, auth.ssl-allow) are set by glusterfs (init.sls)
    when it creates the volume. Without the switch this file does nothing:
    turning TLS on for a running volume is the migration of docs/sessions.md,
    not a highstate (a glusterd with secure-access cannot talk to one
    without). #}
{%- from 'glusterfs/map.jinja' import glusterfs with context %}
{%- set tls = glusterfs.tls %}
{#- a started volume keeps the TLS it runs with (the switch is a maintenance) #}
{%- do salt['lemp_glusterfs.tls_switch_check'](glusterfs.volume, tls.enabled) %}
{%- if tls.enabled %}
{%- for key in ('tls:ca_cert', 'tls:cert', 'tls:key') %}{% do salt['lemp_secret.require'](key) %}{% endfor %}

glusterfs-tls-certificate-file-managed:
  file.managed:
    - name: {{ tls.cert }}
    - contents_pillar: tls:cert
    - user: root
    - group: root
    - mode: '0644'

glusterfs-tls-key-file-managed:
  file.managed:
    - name: {{ tls.key }}
    - contents_pillar: tls:key
    - user: root
    - group: root
    - mode: '0600'
    - show_changes: False

glusterfs-tls-ca-file-managed:
  file.managed:
    - name: {{ tls.ca }}
    - contents_pillar: tls:ca_cert
    - user: root
    - group: root
    - mode: '0644'

{#- depth 1: a machine's certificate is signed by the CA itself (no
    intermediate), and gluster's default, written down so it is seen. #}
glusterfs-tls-management-secure-access-file-managed:
  file.managed:
    - name: {{ tls.secure_access }}
    - makedirs: True
    - contents: |
        option transport.socket.ssl-cert-depth 1
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: glusterfs-tls-certificate-file-managed
      - file: glusterfs-tls-key-file-managed
      - file: glusterfs-tls-ca-file-managed
{%- endif %}
