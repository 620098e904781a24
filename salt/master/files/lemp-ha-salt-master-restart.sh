#!/bin/bash
{%- from 'master/map.jinja' import master with context %}
# Managed by Salt (salt/master/service.sls). Restarts salt-master onto its
# new configuration once no `salt-run` uses it, checking the file first.
# Started by a transient systemd timer ({{ master.restart.unit }}).
set -euo pipefail
conf={{ master.config_dir }}/{{ master.config_file }}
if ! {{ master.python }} {{ master.checker }} check "$conf"; then
  echo "not restarting {{ master.service }}: $conf is refused (above); fix pillar master:lookup/master:reactor and run the master's highstate" >&2
  exit 1
fi
deadline=$((SECONDS + {{ master.restart.wait_max }}))
# An orchestration run from a shell talks to the master until it ends.
while pgrep -f 'bin/salt-run( |$)' >/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    echo "not restarting {{ master.service }}: a salt-run has been running for {{ master.restart.wait_max }} s; restart it by hand when it is over: systemctl restart {{ master.service }}" >&2
    exit 1
  fi
  sleep 2
done
echo "restarting {{ master.service }} onto $conf"
systemctl restart {{ master.service }}
