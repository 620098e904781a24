#!/usr/bin/env bash
# Run every benchmark in a sensible order; results go to docs/bench.md.
#
#   bench/run_all.sh [--cold] [--no-cache] [--quick]
#
#   (default)    lab_up (warm ./lab up + converged orch.site), edge_cost,
#                fault_matrix (every fault, about 2 h), third_party_app,
#                monitoring_alerts, backup_restore (about an hour for 1 GiB),
#                scale_join, scale_events
#   --cold       then ./lab down && ./lab up with the caches present
#   --no-cache   (implies --cold) then ./lab up with the caches moved aside and
#                restored afterwards (downloads everything again: slow)
#   --quick      fault_matrix --quick (its representative subset), shorter
#                loads, a 256 MiB backup_restore dataset
#
# Each script waits for the lab to be healthy before it starts and restores
# what it broke (in a `finally`), so the next one starts on a healthy lab. The
# first failure stops the run. Needs root. The Python used for the scripts that
# need requests: $BENCH_PYTHON, else the test virtualenv
# /var/cache/lemp-ha/venv-*/bin/python, else /tmp/tv/bin/python.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cold=() quick=0
for arg in "$@"; do
  case "$arg" in
    --cold) cold+=(--cold) ;;
    --no-cache) cold+=(--cold --no-cache) ;;
    --quick) quick=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "ERROR: run as root (the lab's machines are LXC containers)" >&2; exit 2; }

pick_python() {
  local py
  for py in "${BENCH_PYTHON:-}" "${LEMP_HA_CACHE:-/var/cache/lemp-ha}"/venv-*/bin/python /tmp/tv/bin/python; do
    [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import requests, yaml' 2>/dev/null && { echo "$py"; return 0; }
  done
  return 1
}

step() { printf '\n\033[1m==> bench: %s\033[0m\n' "$*"; }
run() {
  local name=$1; shift
  step "$name: $*"
  local t0=$SECONDS
  if ! "$@"; then
    echo "bench: $name FAILED after $((SECONDS - t0)) s; stopping here (the scripts restore what they broke; check ./lab status)" >&2
    exit 1
  fi
  echo "bench: $name done in $((SECONDS - t0)) s"
}

# 1. warm ./lab up (also brings a down lab up) and a converged orch.site, with
#    the host's Python (it needs only python3-yaml).
run lab_up /usr/bin/python3 "$here/lab_up.py"

py=$(pick_python) || {
  echo "ERROR: no Python with requests and pyyaml: set BENCH_PYTHON, or run ./lab test once (it creates the test virtualenv)" >&2
  exit 2
}
echo "bench: using $py"

if [ $quick = 1 ]; then
  run edge_cost "$py" "$here/edge_cost.py" --rounds 2
  run fault_matrix "$py" "$here/fault_matrix.py" --quick
else
  run edge_cost "$py" "$here/edge_cost.py"
  run fault_matrix "$py" "$here/fault_matrix.py"
fi
run third_party_app "$py" "$here/third_party_app.py"
if [ $quick = 1 ]; then
  run monitoring_alerts "$py" "$here/monitoring_alerts.py" --scenarios nginx,novip --sample 20
else
  run monitoring_alerts "$py" "$here/monitoring_alerts.py"
fi
if [ $quick = 1 ]; then
  run backup_restore "$py" "$here/backup_restore.py" --size-mb 256 --run-seconds 30
else
  run backup_restore "$py" "$here/backup_restore.py"
fi
if [ $quick = 1 ]; then
  run scale_join "$py" "$here/scale_join.py" --boxes baked
  run scale_events "$py" "$here/scale_events.py" --scenarios hand
else
  run scale_join "$py" "$here/scale_join.py"
  run scale_events "$py" "$here/scale_events.py"
fi

# Last: these destroy and rebuild the lab (./lab up ends with orch.site).
if [ ${#cold[@]} -gt 0 ]; then
  run lab_up_cold /usr/bin/python3 "$here/lab_up.py" --skip-warm "${cold[@]}"
fi
step "all done: results in docs/bench.md"
