{#- Unpack release app:version into <root>/<name>/releases/<version> with its
    config, WITHOUT making it current (webapp.switch does that). A release is
    immutable once its marker file exists: a re-run only refreshes the config. #}
{%- from 'webapp/map.jinja' import app, app_dir, release_dir, source_kind, db_host, version with context %}
{%- set password = salt['lemp_secret.require']('app:database:password') %}
{%- set marker = release_dir ~ '/.lemp-ha-release' %}
{%- set sessions_vip = salt['pillar.get']('topology:network:vip') %}

webapp-{{ app.name }}-releases-directory-present:
  file.directory:
    - name: {{ app_dir }}/releases
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True

{%- if source_kind == 'path' %}

webapp-{{ app.name }}-release-{{ version }}-files-copied-from-master:
  file.recurse:
    - name: {{ release_dir }}
    - source: {{ app.source.path | json }}
    - user: root
    - group: root
    - dir_mode: '0755'
    - file_mode: '0644'
    - include_empty: True
    - unless: test -e {{ marker }}
    - require:
      - file: webapp-{{ app.name }}-releases-directory-present
{%- set fetched = 'file: webapp-' ~ app.name ~ '-release-' ~ version ~ '-files-copied-from-master' %}
{%- elif source_kind == 'git' %}

webapp-git-installed:
  pkg.installed:
    - name: git

webapp-{{ app.name }}-release-{{ version }}-cloned-from-git:
  git.latest:
    - name: {{ app.source.git.url | json }}
    - rev: {{ app.source.git.ref | string | json }}
    - target: {{ release_dir }}
    - force_reset: True
    - unless: test -e {{ marker }}
    - require:
      - pkg: webapp-git-installed
      - file: webapp-{{ app.name }}-releases-directory-present
{%- set fetched = 'git: webapp-' ~ app.name ~ '-release-' ~ version ~ '-cloned-from-git' %}
{%- else %}

webapp-{{ app.name }}-release-{{ version }}-archive-extracted:
  archive.extracted:
    - name: {{ release_dir }}
    - source: {{ app.source.archive.url | json }}
    - source_hash: {{ app.source.archive.hash | json }}
    - enforce_toplevel: False
    - user: root
    - group: root
    - unless: test -e {{ marker }}
    - require:
      - file: webapp-{{ app.name }}-releases-directory-present
{%- set fetched = 'archive: webapp-' ~ app.name ~ '-release-' ~ version ~ '-archive-extracted' %}
{%- endif %}

webapp-{{ app.name }}-release-{{ version }}-docroot-exists:
  file.exists:
    - name: {{ release_dir }}/{{ app.docroot }}
    - require:
      - {{ fetched }}

webapp-{{ app.name }}-release-{{ version }}-config-file-managed:
  file.managed:
    - name: {{ release_dir }}/{{ app.config_file }}
    - source: {{ app.config_template }}
    - template: jinja
    - user: root
    - group: {{ app.group }}
    - mode: '0640'
    - makedirs: True
    - show_changes: False
    - context:
        app_name: {{ app.name | json }}
        version: {{ version | json }}
        db_host: {{ db_host | json }}
        db_port: {{ app.database.port | int }}
        db_name: {{ app.database.name | json }}
        db_user: {{ app.database.user | json }}
        db_password: {{ password | json }}
        uploads_dir: {{ app.uploads_dir | json }}
    - require:
      - file: webapp-{{ app.name }}-release-{{ version }}-docroot-exists

webapp-{{ app.name }}-release-{{ version }}-marked-complete:
  file.managed:
    - name: {{ marker }}
    - contents: {{ version | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: webapp-{{ app.name }}-release-{{ version }}-config-file-managed
