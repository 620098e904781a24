{%- from 'glusterfs/map.jinja' import glusterfs with context %}

glusterfs-volume-unmounted:
  mount.unmounted:
    - name: {{ glusterfs.mount_point }}
    - persist: True

glusterfs-status-timer-dead:
  service.dead:
    - name: {{ glusterfs.monitoring.unit }}.timer
    - enable: False

glusterfs-status-files-absent:
  file.absent:
    - names:
      - /etc/systemd/system/{{ glusterfs.monitoring.unit }}.timer
      - /etc/systemd/system/{{ glusterfs.monitoring.unit }}.service
      - {{ glusterfs.monitoring.script }}
      - /run/{{ glusterfs.monitoring.runtime_dir }}
    - require:
      - service: glusterfs-status-timer-dead
