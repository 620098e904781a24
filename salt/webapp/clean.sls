{#- Remove the deployed application (all releases, its node-local writable
    folders) and its cron jobs. Uploads are kept. After a rename, use
    webapp.clean_renamed for the old name instead: it leaves the current app
    (and its cron jobs) alone. #}
{%- from 'webapp/map.jinja' import app, app_dir with context %}
include:
  - webapp.cron_clean

webapp-{{ app.name }}-all-releases-absent:
  file.absent:
    - name: {{ app_dir }}

webapp-{{ app.name }}-node-local-writable-folders-absent:
  file.absent:
    - name: {{ app.local_dir }}/{{ app.name }}
