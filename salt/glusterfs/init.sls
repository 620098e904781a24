{#- Uploads shared by the web nodes: a GlusterFS replica volume with one brick
    per web node, FUSE-mounted on each at glusterfs:lookup:mount_point.
    The first web node probes the others and creates the volume; the others
    wait for it (retry) before mounting. See docs/sessions.md (risks). #}
{%- from 'glusterfs/map.jinja' import glusterfs, peers with context %}
{%- set first = peers[0] %}
{%- set volume = glusterfs.volume %}

glusterfs-packages-installed:
  pkg.installed:
    - pkgs: [glusterfs-server, glusterfs-client]

glusterfs-daemon-running:
  service.running:
    - name: glusterd
    - enable: True
    - require:
      - pkg: glusterfs-packages-installed

glusterfs-brick-directory-present:
  file.directory:
    - name: {{ glusterfs.brick_dir }}
    - makedirs: True
{%- if grains['id'] == first.name %}
{%- for peer in peers[1:] %}

glusterfs-peer-{{ peer.name }}-probed:
  glusterfs.peered:
    - name: {{ peer.address }}
    - require:
      - service: glusterfs-daemon-running
    - retry: {attempts: 30, interval: 2}
{%- endfor %}

glusterfs-volume-{{ volume }}-present:
  glusterfs.volume_present:
    - name: {{ volume }}
    - bricks:
{%- for peer in peers %}
      - {{ peer.address }}:{{ glusterfs.brick_dir }}
{%- endfor %}
    - replica: {{ peers | length }}
    - force: True
    - start: True
    - require:
      - file: glusterfs-brick-directory-present
{%- for peer in peers[1:] %}
      - glusterfs: glusterfs-peer-{{ peer.name }}-probed
{%- endfor %}
{%- for option, value in glusterfs.options | dictsort %}

glusterfs-volume-{{ volume }}-option-{{ option }}-set:
  cmd.run:
    - name: gluster volume set {{ volume }} {{ option }} {{ value }}
    - unless: gluster volume get {{ volume }} {{ option }} | grep -qE '^{{ option | replace('.', '\\.') }}\s+{{ value }}\s*$'
    - require:
      - glusterfs: glusterfs-volume-{{ volume }}-present
{%- endfor %}
{%- endif %}

glusterfs-volume-{{ volume }}-mounted:
  mount.mounted:
    - name: {{ glusterfs.mount_point }}
    - device: localhost:/{{ volume }}
    - fstype: glusterfs
    - opts: defaults,_netdev,backup-volfile-servers={{ peers | map(attribute='address') | join(':') }}
    - mkmnt: True
    - persist: True
    - retry: {attempts: 30, interval: 2}
    - require:
      - service: glusterfs-daemon-running
      - file: glusterfs-brick-directory-present

glusterfs-uploads-writable-by-php:
  file.directory:
    - name: {{ glusterfs.mount_point }}
    - user: www-data
    - group: www-data
    - mode: '0750'
    - require:
      - mount: glusterfs-volume-{{ volume }}-mounted
