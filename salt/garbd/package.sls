{%- from 'garbd/map.jinja' import garbd with context %}

garbd-package-installed:
  pkg.installed:
    - name: {{ garbd.package }}
