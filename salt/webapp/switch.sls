{#- Make release app:version current: atomic symlink switch (a temporary link
    renamed over `current` with mv -T, one rename(2)); the release it
    replaces becomes `previous`, for webapp.rollback. #}
{%- from 'webapp/map.jinja' import app, app_dir, release_dir, version with context %}
include:
  - webapp.release

webapp-{{ app.name }}-release-{{ version }}-is-current:
  cmd.run:
    - name: |
        set -eu
        cd {{ app_dir | quote }}
        old=$(readlink current || true)
        if [ -n "$old" ] && [ "$old" != "releases/{{ version }}" ]; then
          ln -sfn "$old" .previous.tmp && mv -T .previous.tmp previous
        fi
        ln -sfn "releases/{{ version }}" .current.tmp && mv -T .current.tmp current
        echo "current -> releases/{{ version }} (was: ${old:-nothing})"
    - unless: test "$(readlink {{ (app_dir ~ '/current') | quote }})" = "releases/{{ version }}"
    - require:
      - file: webapp-{{ app.name }}-release-{{ version }}-marked-complete
