{%- from 'nginx/map.jinja' import nginx with context %}

nginx-packages-installed:
  pkg.installed:
    - pkgs: {{ nginx.packages | json }}
