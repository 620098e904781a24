# The lab's cloud engine: a Salt minion `labhost` on this host, so that the
# master's orchestrations (orch.scale_out / orch.scale_in) can boot and
# destroy the web pool's machines with Vagrant (_modules/lemp_labcloud.py).
# Started by ./lab up, stopped by ./lab down. Sourced by ./lab.
#
# Least privilege: it runs from the test virtualenv, loads the checkout's
# lemp_labcloud and Salt's test module and nothing else (whitelist_modules;
# no saltutil: the master cannot push it code), talks only to the master's
# lab address, and only once that address is routed over the lab bridge.
# Its key is pre-accepted on the master, the master's key pre-seeded here,
# both read through lxc-attach: no key is accepted on first sight.
# shellcheck shell=bash

LABHOST_ID=labhost

labhost_dir() { echo "$LAB_STATE/labhost"; }
labhost_pidfile() { echo "$(labhost_dir)/var/run/salt-minion.pid"; }

# The running labhost minion's pid, or nothing: the pid file's process only
# when it is our salt-minion with our configuration folder.
labhost_pid() {
  local pid
  pid=$(cat "$(labhost_pidfile)" 2>/dev/null) || return 0
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "salt-minion -c $(labhost_dir) " && echo "$pid"
  return 0
}

labhost_config() {
  local master_address=$1
  cat <<CONF
# Written by ./lab up (tools/lab/labhost.sh): the lab host's minion, the lab's cloud engine.
id: $LABHOST_ID
master: $master_address
# The master's key, pinned as on every lab machine (tools/lab/lab_secrets.py)
master_finger: '$(cat "$LAB_STATE/secrets/salt-master/master_finger")'
hash_type: sha256
root_dir: $(labhost_dir)
enable_fqdns_grains: False
mine_enabled: False
acceptance_wait_time: 2
acceptance_wait_time_max: 10
random_reauth_delay: 0
# A folder holding only the checkout's lemp_labcloud (a link); of it and of
# Salt's own modules, only these load.
module_dirs:
  - $(labhost_dir)/ext
whitelist_modules:
  - lemp_labcloud
  - test
lemp_labcloud:
  repo: $LAB_REPO
CONF
}

# accept_minion_key NAME PUBKEY: NAME's public key becomes accepted on the
# master (as salt-cloud pre-seeds one), any pending/rejected/denied copy goes.
accept_minion_key() {
  local name=$1 pub=$2
  printf '%s\n' "$pub" | lab_exec "$(lab_master)" sh -c "
    set -e; pki=/etc/salt/pki/master; name='$name'
    install -d -m 0700 \$pki/minions
    cat >\$pki/minions/.\$name.new
    if cmp -s \$pki/minions/.\$name.new \$pki/minions/\$name; then rm -f \$pki/minions/.\$name.new
    else chmod 0644 \$pki/minions/.\$name.new; mv \$pki/minions/.\$name.new \$pki/minions/\$name; fi
    rm -f \$pki/minions_pre/\$name \$pki/minions_rejected/\$name \$pki/minions_denied/\$name" \
    || die "could not pre-accept $name's key on $(lab_master)" "./lab ssh $(lab_master), then: salt-key -L"
}

labhost_up() {
  local dir master address conf pki pub master_pub restart=0 i
  dir=$(labhost_dir)
  master=$(lab_master)
  address=$(lab_address "$master")
  require_lab_route "$address"
  ensure_venv
  step "starting the lab's cloud engine: salt minion $LABHOST_ID on this host (lemp_labcloud, $dir)"
  install -d -m 0700 "$dir"
  pki=$dir/etc/salt/pki/minion
  install -d -m 0700 "$pki"
  install -d "$dir/ext/modules"
  ln -sfn "$LAB_REPO/_modules/lemp_labcloud.py" "$dir/ext/modules/lemp_labcloud.py"
  conf=$(labhost_config "$address")
  if [ "$conf" != "$(cat "$dir/minion" 2>/dev/null)" ]; then
    printf '%s\n' "$conf" >"$dir/minion"; restart=1
  fi
  # The master's key, from the master itself (a rebuilt master has a new one).
  master_pub=$(lab_exec "$master" cat /etc/salt/pki/master/master.pub) \
    || die "could not read the master's public key on $master" "./lab ssh $master, then: systemctl status salt-master"
  if [ "$master_pub" != "$(cat "$pki/minion_master.pub" 2>/dev/null)" ]; then
    printf '%s\n' "$master_pub" >"$pki/minion_master.pub"; restart=1
  fi
  # A minion from another virtualenv (the requirements changed) restarts too.
  local pid
  pid=$(labhost_pid)
  [ "$LAB_VENV" = "$(cat "$dir/venv" 2>/dev/null)" ] || restart=1
  if [ -n "$pid" ] && [ $restart = 1 ]; then labhost_down quiet; pid=; fi
  [ -n "$pid" ] || labhost_start
  for i in $(seq 30); do [ -s "$pki/minion.pub" ] && break; sleep 1; done
  pub=$(cat "$pki/minion.pub" 2>/dev/null) || die "the lab host's minion made no key in $pki" "see $dir/var/log/salt/minion"
  accept_minion_key "$LABHOST_ID" "$pub"
  for i in $(seq 60); do
    salt_on_master "salt --out=txt --timeout=5 $LABHOST_ID test.ping 2>/dev/null" | grep -q "^$LABHOST_ID: True" \
      && { info "$LABHOST_ID answers the master"; labhost_watchdog_start; return 0; }
    sleep 1
  done
  die "the lab host's minion $LABHOST_ID never answered the master" "see $dir/var/log/salt/minion; ./lab ssh $master, then: salt-key -L"
}

labhost_start() {
  local dir
  dir=$(labhost_dir)
  "$LAB_VENV/bin/salt-minion" -c "$dir" -d --log-file-level=info \
    || die "the lab host's minion did not start" "see $dir/var/log/salt/minion"
  echo "$LAB_VENV" >"$dir/venv"
}

# The watchdog. After a restart of the master, the lab host's minion can
# stop receiving the master's jobs while it still looks connected (Salt
# 3008.4: its log ends at "Minion is ready to receive requests!", every job
# then gets no answer) until its connection next drops (CI rehearsals 8 and
# 11: 5 minutes, three labcloud tests failed). The master's restarts are
# normal (salt/master restarts it when its configuration changes), so the
# lab's cloud engine watches itself: every 20 s the master pings it beside
# its own minion, and two misses in a row while the master's own minion
# answers restart it. The product's minions are not affected (the tests
# after a master restart use every one of them).
LABHOST_WATCH_SECONDS=20
labhost_watchdog_pidfile() { echo "$(labhost_dir)/var/run/watchdog.pid"; }

labhost_watchdog() {
  local master misses=0 answer
  master=$(lab_master)
  while sleep "$LABHOST_WATCH_SECONDS"; do
    [ -n "$(labhost_pid)" ] || return 0  # stopped (./lab down, a restart by ./lab up)
    answer=$(salt_on_master "salt --out=txt --timeout=10 -L $master,$LABHOST_ID test.ping 2>/dev/null" 2>/dev/null || true)
    if ! grep -q "^$master: True" <<<"$answer" || grep -q "^$LABHOST_ID: True" <<<"$answer"; then
      misses=0  # it answers, or the master itself does not (stopped, restarting): nothing to judge
      continue
    fi
    misses=$((misses + 1))
    echo "$(date -u +%FT%TZ) $LABHOST_ID did not answer the master's test.ping ($misses in a row)"
    [ $misses -ge 2 ] || continue
    require_lab_route "$(lab_address "$master")"
    echo "$(date -u +%FT%TZ) restarting $LABHOST_ID (pid $(labhost_pid))"
    labhost_down quiet keep-watchdog
    labhost_start
    misses=0
  done
}

labhost_watchdog_start() {
  local log
  labhost_watchdog_stop
  log=$(labhost_dir)/var/log/watchdog.log
  # detached from ./lab (its EXIT trap, its terminal); ./lab down stops it
  ( trap - EXIT; set +e; labhost_watchdog ) </dev/null >>"$log" 2>&1 &
  echo $! >"$(labhost_watchdog_pidfile)"
  info "$LABHOST_ID's watchdog runs (pid $!, $log)"
}

labhost_watchdog_stop() {
  local pid
  pid=$(cat "$(labhost_watchdog_pidfile)" 2>/dev/null) || return 0
  # only our watchdog: a subshell of ./lab, whose command line is bash's
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "bash"; then
    kill_tree "$pid"
  fi
  rm -f "$(labhost_watchdog_pidfile)"
}

# labhost_down [quiet] [keep-watchdog]: stop the lab host's minion (only
# ours, by its pid), and its watchdog unless the watchdog is the caller.
labhost_down() {
  local pid i
  [ "${2:-}" = keep-watchdog ] || labhost_watchdog_stop
  pid=$(labhost_pid)
  [ -n "$pid" ] || return 0
  [ "${1:-}" = quiet ] || step "stopping the lab's cloud engine (salt minion $LABHOST_ID, pid $pid)"
  kill "$pid" 2>/dev/null || true
  for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  rm -f "$(labhost_pidfile)"
}
