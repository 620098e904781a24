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

{#- glusterd reads secure-access and its certificate when it starts, and the
    package started it before they existed: restarted when what it loaded
    differs from them (by content, also after a run that failed in between).
    Its bricks keep serving meanwhile. #}
glusterfs-daemon-runs-its-current-tls-files:
  lemp_service.config_loaded:
    - name: glusterd
    - paths:
      - {{ glusterfs.tls.cert }}
      - {{ glusterfs.tls.key }}
      - {{ glusterfs.tls.ca }}
      - {{ glusterfs.tls.secure_access }}
    - action: restart
    - require:
      - service: glusterfs-daemon-running
      - file: glusterfs-tls-management-secure-access-file-managed
{%- endif %}

glusterfs-brick-directory-present:
  file.directory:
    - name: {{ glusterfs.brick_dir }}
    - makedirs: True
