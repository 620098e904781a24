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
    current app alone. #}
{%- from 'webapp/map.jinja' import app, app_dir with context %}
{%- set site = '/etc/nginx/sites-enabled/' ~ app.name ~ '.conf' %}

webapp-{{ app.name }}-is-not-the-app-nginx-serves:
  cmd.run:
    - name: >-
        echo "webapp.clean_renamed: app {{ app.name }} is still served ({{ site }}): converge the new app:name
        first (orch.site), then clean the old one with pillar='{\"app\": {\"name\": \"OLD\"}}'" >&2; exit 1
    - onlyif: test -e {{ site }}

webapp-{{ app.name }}-old-releases-absent:
  file.absent:
    - name: {{ app_dir }}
    - require:
      - cmd: webapp-{{ app.name }}-is-not-the-app-nginx-serves

webapp-{{ app.name }}-old-node-local-writable-folders-absent:
  file.absent:
    - name: {{ app.local_dir }}/{{ app.name }}
    - require:
      - cmd: webapp-{{ app.name }}-is-not-the-app-nginx-serves
