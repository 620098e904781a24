{%- from 'common/map.jinja' import common with context %}

common-base-packages-installed:
  pkg.installed:
    - pkgs: {{ common.packages | json }}
