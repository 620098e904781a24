# ./lab test: the whole suite. Fast tests first (no lab); then the lab tests,
# on the running lab or on one brought up for them. Sourced by ./lab.
# shellcheck shell=bash

lab_test() {
  need_root

  # CI leaves the machine as it found it, also when a step fails.
  [ "${CI:-}" = true ] && trap 'lab_down' EXIT
  ensure_venv
  local rc=0 brought_up=0
  # A green run here proves nothing about a newcomer's machine: first prove
  # the install steps on a clean Debian 12 root.
  check_fresh_root
  step "fast tests: rendering, topology, unit (no lab)"
  "$LAB_VENV/bin/pytest" -p no:cacheprovider "$LAB_REPO/tests/unit" "$LAB_REPO/tests/render" "$@" || rc=$?
  [ $rc = 0 ] || die "fast tests failed: fix them before the lab tests run" "see the pytest output above"

  if ! lab_is_up; then
    brought_up=1
    lab_up
  else
    # a reused lab: its cloud engine runs (a host reboot or an older ./lab up left none)
    labhost_up
  fi
  step "lab tests: real daemons in the lab"
  "$LAB_VENV/bin/pytest" -p no:cacheprovider --durations=40 "$LAB_REPO/tests/lab" "$@" || rc=$?
  # CI leaves the machine as it found it; a developer keeps the lab to iterate.
  if [ "${CI:-}" = true ]; then
    trap - EXIT
    lab_down
  elif [ $brought_up = 1 ]; then
    info "the lab stays up for the next run; ./lab down removes it"
  fi
  return $rc
}

lab_is_up() {
  local name
  ip link show "$(lab_bridge)" >/dev/null 2>&1 || return 1
  while read -r name; do
    [ "$(lxc-info -s -H -n "lemp-ha-$name" 2>/dev/null)" = RUNNING ] || return 1
  done < <(lab_machines)
}
