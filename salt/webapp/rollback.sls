{#- Switch `current` to release app:rollback_to (orch.rollback finds it: the
    `previous` link of the first web node). Idempotent; refuses a release
    that is missing or incomplete on this node, leaving `current` as it is. #}
{%- from 'webapp/map.jinja' import app, app_dir with context %}
{%- set target = salt['lemp_app.check_rollback_target'](salt['pillar.get']('app:rollback_to', '')) %}

webapp-{{ app.name }}-release-{{ target }}-is-current-again:
  cmd.run:
    - name: |
        set -eu
        cd {{ app_dir | quote }}
        if [ ! -e "releases/{{ target }}/.lemp-ha-release" ]; then
          echo "rollback: release {{ target }} is missing or incomplete in {{ app_dir }}/releases; current unchanged" >&2
          exit 1
        fi
        old=$(readlink current || true)
        ln -sfn "releases/{{ target }}" .current.tmp && mv -T .current.tmp current
        if [ -n "$old" ]; then ln -sfn "$old" .previous.tmp && mv -T .previous.tmp previous; fi
        echo "current -> releases/{{ target }} (was: ${old:-nothing})"
    - unless: test "$(readlink {{ (app_dir ~ '/current') | quote }})" = "releases/{{ target }}"
