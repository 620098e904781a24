# ./lab test: the whole suite. Fast tests first (no lab) on a lab that is up;
# when it is not, they run in the background, at the lowest priority, from
# the start of the bring-up until they end (the lab tests start meanwhile:
# both phases are bound by the 2 cores, and the lab tests leave some idle);
# then the lab tests. Sourced by ./lab.
# shellcheck shell=bash

lab_test() {
  need_root

  # CI leaves the machine as it found it, also when a step fails.
  local on_exit=""
  [ "${CI:-}" = true ] && on_exit=lab_down
  [ -z "$on_exit" ] || trap "$on_exit" EXIT
  ensure_venv
  local rc=0 brought_up=0
  # A green run here proves nothing about a newcomer's machine: the install
  # steps are proved on a clean Debian 12 root too (beside the bring-up when
  # the lab is down, before the lab tests when it is up).
  # The fresh-machine check runs the unit tests on its clean root: when it
  # runs, the fast tests here leave them out (the same tests twice cost
  # about 2 minutes of a core), and its verdict is theirs.
  local -a fast_dirs=("$LAB_REPO/tests/render")
  fresh_root_skips && fast_dirs=("$LAB_REPO/tests/unit" "${fast_dirs[@]}")
  if lab_is_up; then
    check_fresh_root
    step "fast tests: rendering, topology${fast_dirs[1]:+, unit} (no lab)"
    "$LAB_VENV/bin/pytest" -p no:cacheprovider "${fast_dirs[@]}" "$@" || rc=$?
    [ $rc = 0 ] || die "fast tests failed: fix them before the lab tests run" "see the pytest output above"
    # a reused lab: its cloud engine runs (a host reboot or an older ./lab up left none)
    labhost_up
  else
    # The fast tests run in the background at the lowest priority, from the
    # bring-up on: they use the minutes the bring-up and the lab tests spend
    # waiting on containers, apt, Salt and Zabbix, instead of adding theirs
    # to the run (on a 2-core machine with no caches, waiting for them
    # before the lab tests cost about 2 minutes). Their verdict comes at the
    # end, and fails the run. The fresh-machine check runs the same way, at
    # the lowest priority too: at the normal one it took a core from the
    # bring-up for its 8 minutes (debootstrap, apt, a venv, the unit tests)
    # on a 2-core machine with no caches. Both are also in the idle I/O
    # class (ionice -c 3): nice leaves the disk shared, and the check's
    # debootstrap and apt installs beside the machines' own dpkg and Salt
    # ran beside an orch.site that took 282 s instead of 180 s on an idle
    # host (CI rehearsal 11); with the idle class it still took 292 s
    # (rehearsal 12, the web box baking too), so the cause of that slowdown
    # is not known yet. A check or a fast test that has failed by the end of
    # the bring-up stops the run there.
    local fast_log="$LAB_CACHE/fast-tests.log"
    local fresh_log="$LAB_CACHE/fresh-machine-check.log"
    # The clean root's installs go through the lab's apt proxy: up first,
    # here, not from two processes at once.
    bridge_up
    apt_proxy_up
    step "fresh-machine check, in the background at the lowest priority while the lab comes up ($fresh_log)"
    ( renice -n 19 -p "$BASHPID" >/dev/null; ionice -c 3 -p "$BASHPID"; check_fresh_root ) > "$fresh_log" 2>&1 &
    FRESH_PID=$!
    step "fast tests: rendering, topology${fast_dirs[1]:+, unit} (no lab), in the background while the lab comes up ($fast_log)"
    nice -n 19 ionice -c 3 "$LAB_VENV/bin/pytest" -p no:cacheprovider "${fast_dirs[@]}" "$@" \
      > "$fast_log" 2>&1 &
    FAST_PID=$!
    # a failed bring-up stops them too (then does what it does on exit anyway)
    # shellcheck disable=SC2064  # on_exit is fixed now
    trap "background_stop; $on_exit" EXIT
    brought_up=1
    lab_up
    # one that has failed already stops the run here
    if ! kill -0 "$FRESH_PID" 2>/dev/null; then
      fresh_verdict "$fresh_log" \
        || die "fresh-machine check failed: see above and $fresh_log" "fix the prerequisites before the lab tests run"
    else
      info "the fresh-machine check goes on in the background ($fresh_log); its verdict comes after the lab tests"
    fi
    if ! kill -0 "$FAST_PID" 2>/dev/null || grep -qE '^(FAILED|ERROR) ' "$fast_log"; then
      fast_verdict "$fast_log" \
        || die "fast tests failed: fix them before the lab tests run" "see the pytest output above and $fast_log"
    else
      info "the fast tests go on in the background ($fast_log); their verdict comes after the lab tests"
    fi
  fi
  step "lab tests: real daemons in the lab"
  "$LAB_VENV/bin/pytest" -p no:cacheprovider --durations=40 "$LAB_REPO/tests/lab" "$@" || rc=$?
  if [ -n "${FRESH_PID:-}" ]; then
    step "fresh-machine check: its verdict"
    fresh_verdict "$LAB_CACHE/fresh-machine-check.log" || rc=1
  fi
  if [ -n "${FAST_PID:-}" ]; then
    step "fast tests: their verdict"
    fast_verdict "$LAB_CACHE/fast-tests.log" || rc=1
  fi
  # CI leaves the machine as it found it; a developer keeps the lab to iterate.
  if [ "${CI:-}" = true ]; then
    trap - EXIT
    lab_down
  elif [ $brought_up = 1 ]; then
    info "the lab stays up for the next run; ./lab down removes it"
  fi
  return $rc
}

# The background jobs of ./lab test (FAST_PID, FRESH_PID) and the web box
# bake: stopped with everything under them when the run stops early.
FAST_PID="" FRESH_PID=""
background_stop() {
  [ -z "$FAST_PID" ] || kill_tree "$FAST_PID"
  [ -z "$FRESH_PID" ] || kill_tree "$FRESH_PID"
  web_box_abort
}

# Wait for the background fresh-machine check; print its last lines, or
# its output's end and fail.
fresh_verdict() {
  local log=$1 fresh_rc=0
  wait "$FRESH_PID" || fresh_rc=$?
  FRESH_PID=""
  sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E 'passed|fresh-machine check' | tail -n 2 || true
  [ $fresh_rc = 0 ] && return 0
  tail -n 40 "$log"
  info "fresh-machine check FAILED: see the output above and $log"
  return 1
}

# Wait for the background fast tests; print their summary, or their output's
# end and fail (during the bring-up: stop the run; after the lab tests:
# return 1, and the run fails).
fast_verdict() {
  local log=$1 fast_rc=0
  wait "$FAST_PID" || fast_rc=$?
  FAST_PID=""
  if [ $fast_rc = 0 ]; then
    # the summary line (with -q it has no ===== around it)
    grep -E '[0-9]+ passed' "$log" | tail -1 || tail -n 1 "$log"
    return 0
  fi
  tail -n 80 "$log"
  info "fast tests FAILED: see the pytest output above and $log"
  return 1
}

lab_is_up() {
  local name
  ip link show "$(lab_bridge)" >/dev/null 2>&1 || return 1
  while read -r name; do
    [ "$(lxc-info -s -H -n "lemp-ha-$name" 2>/dev/null)" = RUNNING ] || return 1
  done < <(lab_machines)
}
