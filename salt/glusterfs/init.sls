{#- Uploads shared by the web nodes: a GlusterFS replica volume with one brick
    per web node plus an arbiter brick on the arbitrator machine, FUSE-mounted
    on each web node at glusterfs:lookup:mount_point. The first web node
    probes the others and creates the volume; the others wait for it (retry)
    before mounting. #}
{%- from 'glusterfs/map.jinja' import glusterfs, plan, peers, arbiter with context %}
{%- set first = peers[0] %}
{%- set volume = glusterfs.volume %}

include:
  - glusterfs.server
  - glusterfs.monitoring
{%- if grains['id'] == first.name %}
{%- set others = plan.brick_hosts[1:] %}
{%- for peer in others %}

{#- Salt 3008 has no glusterfs state module any more: the gluster CLI, guarded. #}
glusterfs-peer-{{ peer.name }}-probed:
  cmd.run:
    - name: gluster peer probe {{ peer.address }}
    - unless: gluster pool list | awk '{print $2}' | grep -qx '{{ peer.address }}'
    - require:
      - service: glusterfs-daemon-running
{%- if glusterfs.tls.enabled %}
      - lemp_service: glusterfs-daemon-runs-its-current-tls-files
{%- endif %}
    - retry: {attempts: 30, interval: 2}
{%- endfor %}
{%- set bricks = plan.bricks %}

{#- Created, given its options, then started: the bricks start with
    auth.allow (and TLS) in place, so no other machine can mount in between. #}
glusterfs-volume-{{ volume }}-created:
  cmd.run:
    - name: >-
        gluster volume create {{ volume }}
        replica {{ bricks | length }}{{ ' arbiter 1' if arbiter else '' }}
        {{ bricks | join(' ') }} force
    - unless: gluster volume info {{ volume }}
    - require:
      - file: glusterfs-brick-directory-present
{%- for peer in others %}
      - cmd: glusterfs-peer-{{ peer.name }}-probed
{%- endfor %}
    # the peers' handshake can lag the probe by a moment
    - retry: {attempts: 10, interval: 3}
{#- plan.options: the pillar's options, auth.allow from the topology and,
    with TLS, client.ssl/server.ssl/auth.ssl-allow (lemp_glusterfs.volume_options).
    auth.allow is applied live on a running volume: the bricks re-check the
    connected clients and drop any no longer admitted, and every admitted
    machine (brick holders, every slot of the scaling pool) is listed. #}
{%- for option, value in plan.options | dictsort %}

glusterfs-volume-{{ volume }}-option-{{ option }}-set:
  lemp_glusterfs.option:
    - name: {{ option }}
    - volume: {{ volume }}
    - value: {{ value | yaml_dquote }}
    - require:
      - cmd: glusterfs-volume-{{ volume }}-created
{%- endfor %}

glusterfs-volume-{{ volume }}-started:
  cmd.run:
    - name: gluster volume start {{ volume }}
    - unless: "gluster volume info {{ volume }} | grep -q '^Status: Started'"
    # glusterd's cluster lock: a peer's own gluster command at that moment
    # refuses this one ("Another transaction is in progress"; seen on a
    # ./lab up, 2026-11-28), as lemp_glusterfs._gluster waits for the options
    - retry: {attempts: 10, interval: 3}
    - require:
      - cmd: glusterfs-volume-{{ volume }}-created
{%- for option in plan.options | sort %}
      - lemp_glusterfs: glusterfs-volume-{{ volume }}-option-{{ option }}-set
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
{%- if glusterfs.tls.enabled %}
      - lemp_service: glusterfs-daemon-runs-its-current-tls-files
{%- endif %}

glusterfs-uploads-writable-by-php:
  file.directory:
    - name: {{ glusterfs.mount_point }}
    - user: www-data
    - group: www-data
    - mode: '0750'
    - require:
      - mount: glusterfs-volume-{{ volume }}-mounted
