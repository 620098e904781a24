{#- The application on a web node: release app:version unpacked, migrated
    (first web node only), and current. #}
{%- from 'webapp/map.jinja' import first_web with context %}
include:
  - webapp.release
{%- if grains['id'] == first_web %}
  - webapp.migrate
{%- endif %}
  - webapp.switch
