{#- The uploads volume on a scaling-pool web node (role web_pool): a FUSE
    client only. A pool VM comes and goes (orch.enrol, orch.scale_in), so it
    holds no brick and is no peer: adding and removing bricks would mean a
    replica change and a heal at every scale step. It mounts from the web
    nodes that hold the bricks, any of them (backup-volfile-servers). The
    bricks admit it because every slot of the pool is in the volume's
    auth.allow (and auth.ssl-allow with TLS): lemp_glusterfs.clients. #}
{%- from 'glusterfs/map.jinja' import glusterfs, peers with context %}
{%- set servers = peers | map(attribute='address') | list %}
{%- set volume = glusterfs.volume %}

include:
  - glusterfs.tls

glusterfs-client-package-installed:
  pkg.installed:
    - name: glusterfs-client

glusterfs-volume-{{ volume }}-mounted-as-client:
  mount.mounted:
    - name: {{ glusterfs.mount_point }}
    - device: {{ servers[0] }}:/{{ volume }}
    - fstype: glusterfs
    - opts: defaults,_netdev,backup-volfile-servers={{ servers[1:] | join(':') }}
    # The kernel does not list this option for the mount: without this, every
    # run would see a difference and remount the volume under the app.
    - hidden_opts: backup-volfile-servers={{ servers[1:] | join(':') }}
    - mkmnt: True
    - persist: True
    - retry: {attempts: 30, interval: 2}
    - require:
      - pkg: glusterfs-client-package-installed
{%- if glusterfs.tls.enabled %}
      # the mount reads them when it starts: the volume file over TLS, then the bricks
      - file: glusterfs-tls-management-secure-access-file-managed
{%- endif %}

glusterfs-uploads-writable-by-php-on-client:
  file.directory:
    - name: {{ glusterfs.mount_point }}
    - user: www-data
    - group: www-data
    - mode: '0750'
    - require:
      - mount: glusterfs-volume-{{ volume }}-mounted-as-client
