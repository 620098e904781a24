{%- from 'glusterfs/map.jinja' import glusterfs with context %}

glusterfs-volume-unmounted:
  mount.unmounted:
    - name: {{ glusterfs.mount_point }}
    - persist: True
