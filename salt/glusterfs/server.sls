{#- A GlusterFS server with an empty brick directory: the web nodes (data
    bricks) and the arbitrator (arbiter brick). #}
{%- from 'glusterfs/map.jinja' import glusterfs with context %}

glusterfs-server-package-installed:
  pkg.installed:
    - pkgs: [glusterfs-server, glusterfs-client]

glusterfs-daemon-running:
  service.running:
    - name: glusterd
    - enable: True
    - require:
      - pkg: glusterfs-server-package-installed

glusterfs-brick-directory-present:
  file.directory:
    - name: {{ glusterfs.brick_dir }}
    - makedirs: True
