{#- After an app:name change: remove what the old name left on this web
    node, its releases and node-local writable folders (app:writable_paths).
    The highstate of the rename already stopped serving it (nginx keeps only
    the managed site) and removed its cron units (webapp.cron); the releases
    are kept until this runs, so a rename can be undone (docs/your-app.md,
    "Rename or remove an application"):

      salt -L web1,web2 state.apply webapp.clean_renamed pillar='{"app": {"name": "old"}}'

    Its uploads on the shared volume are kept (data). It refuses the app
    nginx still serves, so a typo cannot remove the live one; unlike
    webapp.clean (all of the webapp formula, cron included), it leaves the
    current app alone: lemp_app.check_not_served stops the render, before
    anything is removed. #}
{%- from 'webapp/map.jinja' import app, app_dir with context %}
{%- do salt['lemp_app.check_not_served'](app.name) %}

webapp-{{ app.name }}-old-releases-absent:
  file.absent:
    - name: {{ app_dir }}

webapp-{{ app.name }}-old-node-local-writable-folders-absent:
  file.absent:
    - name: {{ app.local_dir }}/{{ app.name }}
