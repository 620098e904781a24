{%- from 'phpfpm/map.jinja' import phpfpm with context %}

phpfpm-packages-installed:
  pkg.installed:
    - pkgs: {{ phpfpm.packages | json }}
