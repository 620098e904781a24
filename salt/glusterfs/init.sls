{#- Uploads shared by the web nodes: a GlusterFS replica volume with one brick
    per web node plus an arbiter brick on the arbitrator machine, FUSE-mounted
    on each web node at glusterfs:lookup:mount_point. The first web node
    probes the others and creates the volume; the others wait for it (retry)
    before mounting. #}
{%- from 'glusterfs/map.jinja' import glusterfs, peers, arbiter with context %}
{%- set first = peers[0] %}
{%- set volume = glusterfs.volume %}

include:
  - glusterfs.server
  - glusterfs.monitoring
{%- if grains['id'] == first.name %}
{%- set others = peers[1:] + ([arbiter] if arbiter else []) %}
{%- for peer in others %}

{#- Salt 3008 has no glusterfs state module any more: the gluster CLI, guarded. #}
glusterfs-peer-{{ peer.name }}-probed:
  cmd.run:
    - name: gluster peer probe {{ peer.address }}
    - unless: gluster pool list | awk '{print $2}' | grep -qx '{{ peer.address }}'
    - require:
      - service: glusterfs-daemon-running
    - retry: {attempts: 30, interval: 2}
{%- endfor %}
{%- set bricks = [] %}
{%- for peer in peers %}{% do bricks.append(peer.address ~ ':' ~ glusterfs.brick_dir) %}{% endfor %}
{%- if arbiter %}{% do bricks.append(arbiter.address ~ ':' ~ glusterfs.brick_dir) %}{% endif %}

glusterfs-volume-{{ volume }}-created-and-started:
  cmd.run:
    - name: >-
        gluster volume create {{ volume }}
        replica {{ bricks | length }}{{ ' arbiter 1' if arbiter else '' }}
        {{ bricks | join(' ') }} force
        && gluster volume start {{ volume }}
    - unless: gluster volume info {{ volume }}
    - require:
      - file: glusterfs-brick-directory-present
{%- for peer in others %}
      - cmd: glusterfs-peer-{{ peer.name }}-probed
{%- endfor %}
    # the peers' handshake can lag the probe by a moment
    - retry: {attempts: 10, interval: 3}

glusterfs-volume-{{ volume }}-started:
  cmd.run:
    - name: gluster volume start {{ volume }}
    - unless: "gluster volume info {{ volume }} | grep -q '^Status: Started'"
    - require:
      - cmd: glusterfs-volume-{{ volume }}-created-and-started
{%- for option, value in glusterfs.options | dictsort %}

glusterfs-volume-{{ volume }}-option-{{ option }}-set:
  cmd.run:
    - name: gluster volume set {{ volume }} {{ option }} {{ value }}
    - unless: gluster volume get {{ volume }} {{ option }} | grep -qE '^{{ option | replace('.', '\\.') }}\s+{{ value }}\s*$'
    - require:
      - cmd: glusterfs-volume-{{ volume }}-started
{%- endfor %}
{%- endif %}

glusterfs-volume-{{ volume }}-mounted:
  mount.mounted:
    - name: {{ glusterfs.mount_point }}
    - device: localhost:/{{ volume }}
    - fstype: glusterfs
    - opts: defaults,_netdev,backup-volfile-servers={{ peers | map(attribute='address') | join(':') }}
    # The kernel does not list this option for the mount: without this, every
    # run would see a difference and remount the volume under the app.
    - hidden_opts: backup-volfile-servers={{ peers | map(attribute='address') | join(':') }}
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
