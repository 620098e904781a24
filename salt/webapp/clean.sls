{#- Remove the deployed application (all releases). Uploads are kept. #}
{%- from 'webapp/map.jinja' import app, app_dir with context %}
include:
  - webapp.cron_clean

webapp-{{ app.name }}-all-releases-absent:
  file.absent:
    - name: {{ app_dir }}
