{#- A GlusterFS server with an empty brick directory: the web nodes (data
    bricks) and the arbitrator (arbiter brick). #}
{%- from 'glusterfs/map.jinja' import glusterfs with context %}

include:
  - glusterfs.tls

glusterfs-server-package-installed:
  pkg.installed:
    - pkgs: [glusterfs-server, glusterfs-client]

glusterfs-daemon-running:
  service.running:
    - name: glusterd
    - enable: True
    - require:
      - pkg: glusterfs-server-package-installed
{%- if glusterfs.tls.enabled %}
    # glusterd reads secure-access and its certificate when it starts (the
    # package starts it before they exist); the bricks keep serving meanwhile.
    - watch:
      - file: glusterfs-tls-certificate-file-managed
      - file: glusterfs-tls-key-file-managed
      - file: glusterfs-tls-ca-file-managed
      - file: glusterfs-tls-management-secure-access-file-managed
{%- endif %}

glusterfs-brick-directory-present:
  file.directory:
    - name: {{ glusterfs.brick_dir }}
    - makedirs: True
