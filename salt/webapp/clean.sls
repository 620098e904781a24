{#- Remove app app:name from this web node: all its releases and its
    node-local writable folders (app:writable_paths). Its uploads on the
    shared volume (app:shared_paths) are kept: they are data, and the other
    web nodes still see them. After an app:name change, the highstate
    already stops serving the old name (nginx keeps only the managed site);
    this removes the old releases (docs/your-app.md, "Rename or remove"):

      salt -L web1,web2 state.apply webapp.clean pillar='{"app": {"name": "old"}}'

    It refuses the app nginx still serves, so a typo cannot delete the live one. #}
{%- from 'webapp/map.jinja' import app, app_dir with context %}
include:
  - webapp.cron_clean
{%- set site = '/etc/nginx/sites-enabled/' ~ app.name ~ '.conf' %}

webapp-{{ app.name }}-is-not-the-app-nginx-serves:
  cmd.run:
    - name: >-
        echo "webapp.clean: app {{ app.name }} is still served ({{ site }}): deploy the new app:name first
        (highstate), then clean the old one with pillar='{\"app\": {\"name\": \"OLD\"}}'" >&2; exit 1
    - onlyif: test -e {{ site }}

webapp-{{ app.name }}-all-releases-absent:
  file.absent:
    - name: {{ app_dir }}
    - require:
      - cmd: webapp-{{ app.name }}-is-not-the-app-nginx-serves

webapp-{{ app.name }}-node-local-writable-folders-absent:
  file.absent:
    - name: {{ app.local_dir }}/{{ app.name }}
    - require:
      - cmd: webapp-{{ app.name }}-is-not-the-app-nginx-serves
