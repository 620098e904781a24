{#- Unpack release app:version into <root>/<name>/releases/<version> with its
    config, WITHOUT making it current (webapp.switch does that). A release is
    immutable once its marker file exists: a re-run only refreshes the config.
    Folders PHP writes (app:shared_paths, app:writable_paths) are links out
    of the root-owned release, made before the marker, which records them
    (lemp_app.marker_text): nginx keeps them static while the release is on
    disk, and a change of them for a built release is refused. #}
{%- from 'webapp/map.jinja' import app, app_dir, release_dir, source_kind, db_host, version, checked with context %}
{%- set password = salt['lemp_secret.require']('app:database:password') %}
{%- do salt['lemp_secret.require']('tls:ca_cert') %}
{%- set secrets = salt['lemp_app.app_secrets'](checked.secret_names) %}
{%- set marker = release_dir ~ '/.lemp-ha-release' %}
{%- set is_marked = 'test -e ' ~ (marker | quote) %}

{#- What the release needs from the platform comes with it, before any node
    switches to it (orch.deploy applies this state on every web node first):
    its PHP extensions and ini (phpfpm), and nginx's rules for its linked
    folders: a folder PHP writes must never be served by PHP, not even for a
    moment between the link and nginx's next run. #}
include:
  - phpfpm
  - nginx

{#- The platform CA: the app checks the database server's certificate
    against it (app:database:ssl_ca, given to the config template as
    db_ssl_ca). Also in the system's trust store, for apps that cannot name
    a CA file (WordPress: PHP's default verify paths). #}
webapp-platform-ca-file-managed:
  file.managed:
    - name: {{ app.database.ssl_ca }}
    - contents_pillar: tls:ca_cert
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: True

webapp-platform-ca-in-system-trust-store:
  cmd.run:
    - name: update-ca-certificates
    - onchanges:
      - file: webapp-platform-ca-file-managed

webapp-{{ app.name }}-releases-directory-present:
  file.directory:
    - name: {{ app_dir }}/releases
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: True

{#- A release without its marker is a half-built one (a run failed between
    fetching and marking): it goes, links and all, before the fetch. A fetch
    into it would follow its links and write into the shared volume.
    rm -rf removes a link, never what it points to. #}
webapp-{{ app.name }}-release-{{ version }}-half-built-copy-removed:
  cmd.run:
    - name: rm -rf -- {{ release_dir | quote }}
    - onlyif: test -e {{ release_dir | quote }} || test -L {{ release_dir | quote }}
    - unless: {{ is_marked }}
    - require:
      - file: webapp-{{ app.name }}-releases-directory-present

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
    - unless: {{ is_marked }}
    - require:
      - cmd: webapp-{{ app.name }}-release-{{ version }}-half-built-copy-removed
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
    - unless: {{ is_marked }}
    - require:
      - pkg: webapp-git-installed
      - cmd: webapp-{{ app.name }}-release-{{ version }}-half-built-copy-removed
{%- set fetched = 'git: webapp-' ~ app.name ~ '-release-' ~ version ~ '-cloned-from-git' %}
{%- elif source_kind == 'package' %}
{%- set package = checked.package %}

{#- One transaction with the `php` metapackage: the app's Depends
    `libapache2-mod-php | php` is then met by php (whose php8.x is met by
    the installed php-fpm), and `apache2 | httpd` by nginx, so apt never
    pulls apache2. No Recommends: wordpress's would bring a MySQL server. #}
webapp-{{ app.name }}-package-{{ package.name }}-installed:
  pkg.installed:
    - pkgs:
      - {{ package.name }}: {{ package.version | json }}
{%- for extra in package.with %}
      - {{ extra }}
{%- endfor %}
      - php
    - install_recommends: False
    - require:
      - pkg: phpfpm-packages-installed
      - pkg: nginx-packages-installed

webapp-{{ app.name }}-release-{{ version }}-files-copied-from-package:
  module.run:
    - lemp_app.copy_release:
      - src: {{ package.path | json }}
      - dest: {{ release_dir | json }}
      - exclude: [{{ app.config_file | json }}]
    - unless: {{ is_marked }}
    - require:
      - pkg: webapp-{{ app.name }}-package-{{ package.name }}-installed
      - cmd: webapp-{{ app.name }}-release-{{ version }}-half-built-copy-removed
{%- set fetched = 'module: webapp-' ~ app.name ~ '-release-' ~ version ~ '-files-copied-from-package' %}
{%- else %}

webapp-{{ app.name }}-release-{{ version }}-archive-extracted:
  archive.extracted:
    - name: {{ release_dir }}
    - source: {{ app.source.archive.url | json }}
    - source_hash: {{ app.source.archive.hash | json }}
    - enforce_toplevel: False
    - user: root
    - group: root
    - unless: {{ is_marked }}
    - require:
      - cmd: webapp-{{ app.name }}-release-{{ version }}-half-built-copy-removed
{%- set fetched = 'archive: webapp-' ~ app.name ~ '-release-' ~ version ~ '-archive-extracted' %}
{%- endif %}

{%- for link in checked.links %}

webapp-{{ app.name }}-{{ link.path }}-folder-on-{{ link.where }}-present:
  file.directory:
    - name: {{ link.target | json }}
    - user: {{ app.user }}
    - group: {{ app.group }}
    - mode: '0750'
    - makedirs: True
    # the web nodes create a shared folder at the same time
    - retry: {attempts: 3, interval: 2}

{#- A packaged app ships the folder (empty, or a placeholder): it gives way
    to the link. Only while the release is being built (no marker): nothing
    serves from it yet. (file.symlink's force does not replace a folder.) #}
webapp-{{ app.name }}-release-{{ version }}-{{ link.path }}-shipped-folder-removed:
  cmd.run:
    - name: rm -rf -- {{ (release_dir ~ '/' ~ link.path) | quote }}
    - onlyif: test -d {{ (release_dir ~ '/' ~ link.path) | quote }} && test ! -L {{ (release_dir ~ '/' ~ link.path) | quote }}
    - unless: {{ is_marked }}
    - require:
      - {{ fetched }}

webapp-{{ app.name }}-release-{{ version }}-{{ link.path }}-linked-to-{{ link.where }}:
  file.symlink:
    - name: {{ (release_dir ~ '/' ~ link.path) | json }}
    - target: {{ link.target | json }}
    - makedirs: True
    - user: root
    - group: root
    - unless: {{ is_marked }}
    - require:
      - cmd: webapp-{{ app.name }}-release-{{ version }}-{{ link.path }}-shipped-folder-removed
      - file: webapp-{{ app.name }}-{{ link.path }}-folder-on-{{ link.where }}-present
      # nginx has loaded the rules for this folder (static only) first
      - lemp_service: nginx-runs-its-current-configuration
{%- endfor %}

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
        db_ssl_ca: {{ app.database.ssl_ca | json }}
        uploads_dir: {{ app.uploads_dir | json }}
        url: {{ checked.url | json }}
        app: {{ checked.template_app | json }}
        secrets: {{ secrets | json }}
    - require:
      - file: webapp-{{ app.name }}-release-{{ version }}-docroot-exists
      # the config connects over TLS, checking the server against this CA
      - cmd: webapp-platform-ca-in-system-trust-store

webapp-{{ app.name }}-release-{{ version }}-marked-complete:
  file.managed:
    - name: {{ marker }}
    # the version and the links made above (JSON): healthz.php reports the
    # version, lemp_app.release_links reads the links
    - contents: {{ checked.marker | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: webapp-{{ app.name }}-release-{{ version }}-config-file-managed
{%- for link in checked.links %}
      - file: webapp-{{ app.name }}-release-{{ version }}-{{ link.path }}-linked-to-{{ link.where }}
{%- endfor %}
