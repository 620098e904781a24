{#- The base packages plus the app's extensions (pillar app:php:extensions,
    checked against apt by _modules/lemp_app.py), in one transaction.
    Debian's extension packages trigger a reload of php-fpm themselves. #}
{%- from 'phpfpm/map.jinja' import phpfpm with context %}
{%- from 'webapp/map.jinja' import checked as webapp with context %}

phpfpm-packages-installed:
  pkg.installed:
    - pkgs: {{ (phpfpm.packages + webapp.php_packages) | json }}
