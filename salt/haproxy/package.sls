{%- from 'haproxy/map.jinja' import haproxy with context %}

haproxy-package-installed:
  pkg.installed:
    - name: {{ haproxy.package }}

haproxy-may-bind-the-vip-on-the-backup:
  sysctl.present:
    - name: net.ipv4.ip_nonlocal_bind
    - value: 1
    - config: /etc/sysctl.d/60-lemp-ha-nonlocal-bind.conf
