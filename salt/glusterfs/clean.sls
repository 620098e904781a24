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

{#- TLS (glusterfs.tls): a glusterd still running keeps TLS until it restarts. #}
glusterfs-tls-files-absent:
  file.absent:
    - names:
      - {{ glusterfs.tls.cert }}
      - {{ glusterfs.tls.key }}
      - {{ glusterfs.tls.ca }}
      - {{ glusterfs.tls.secure_access }}
