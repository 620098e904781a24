# ./lab up: everything from a bare Debian 12 host to a configured platform.
# shellcheck shell=bash

lab_up() {
  need_root
  check_lxc_host
  local t0=$SECONDS


  bridge_up
  apt_proxy_up
  adopt_master_key
  ensure_secrets
  ensure_box
  web_box_begin
  vagrant_up
  install_master_key
  accept_machine_keys
  install_secrets
  wait_for_minions
  run_orch site
  wait_for_master_config
  wait_for_site
  web_box_end
  labhost_up
  print_summary "$t0"
}

# orch.site passing is not the site answering: /healthz/deep through the VIP
# (HAProxy, a web node, PHP-FPM and the database, over TLS) must be healthy
# before the lab is called up. Seen: every state green while the platform's
# health check could not log in to MySQL and HAProxy answered 503 to everyone.
# Deep: the shallow /healthz (what HAProxy routes on) asks no database.
# Healthy as every gate judges it (_modules/lemp_healthz.py): 200, "status"
# "ok" and "check" "deep" (the lab host sees the details: pillar/web.sls);
# a node in maintenance answers 200 too, and is not up.
wait_for_site() {
  local vip why
  vip=$(topo_get "t['network']['vip']")
  require_lab_route "$vip"
  step "checking that the site answers through the VIP (https://$vip/healthz/deep)"
  why=$("$HOST_PYTHON" "$LAB_REPO/_modules/lemp_healthz.py" wait "https://$vip/healthz/deep" \
    --cacert "$LAB_STATE/secrets/ca.pem" --attempts 120 --interval 1 --timeout 5 2>&1 >/dev/null) && return 0
  die "orch.site passed, but the site is not healthy: $why" \
    "ask a web node why: ./lab ssh web1, then: curl -ks https://127.0.0.1/healthz/deep (its JSON names the reason)"
}

# Lab secrets live in $LAB_STATE, never in the repo; generated once per lab
# and kept, so a re-run never rotates a password under a running cluster.
ensure_secrets() {
  install -d -m 0700 "$LAB_STATE"
  # The shared enrolment secret of labs made before pre-seeded keys.
  rm -f "$LAB_STATE/autosign_key"
  step "generating lab passwords and certificates (kept in $LAB_STATE/secrets)"
  "$HOST_PYTHON" "$LAB_REPO/tools/lab/lab_secrets.py" generate "$LAB_STATE" "$LAB_TOPOLOGY" \
    "$LAB_REPO/pillar/secrets.spec.yaml" >/dev/null || die "generating the lab secrets failed" "see the message above"
}

# The Salt master's key pair lives with the lab secrets
# ($LAB_STATE/secrets/salt-master, made by lab_secrets.py before any
# minion exists); every minion pins its fingerprint. A lab whose master was
# made before that keeps its key: it is copied here once (through
# lxc-attach), so that no minion sees the master's key change.
adopt_master_key() {
  local master dir
  master=$(lab_master)
  dir=$LAB_STATE/secrets/salt-master
  [ -e "$dir/master.pem" ] && return 0
  [ "$(lxc-info -s -H -n "lemp-ha-$master" 2>/dev/null)" = RUNNING ] || return 0
  lab_exec "$master" test -s /etc/salt/pki/master/master.pem 2>/dev/null || return 0
  step "keeping the running master's key pair: copied from $master into $dir"
  install -d -m 0700 "$LAB_STATE/secrets" "$dir"
  (umask 077
   lab_exec "$master" cat /etc/salt/pki/master/master.pem >"$dir/master.pem.new" \
     && lab_exec "$master" cat /etc/salt/pki/master/master.pub >"$dir/master.pub.new") \
    || { rm -f "$dir"/*.new; die "could not read the master's key pair on $master" "./lab ssh $master, then: ls -l /etc/salt/pki/master"; }
  mv "$dir/master.pub.new" "$dir/master.pub"
  mv "$dir/master.pem.new" "$dir/master.pem"
}

# The master starts on the lab's key pair: salt.sh leaves a new master
# stopped until its key is here. Its key is sent through lxc-attach (no
# network, no file on the host but the lab secrets).
install_master_key() {
  local master dir current
  master=$(lab_master)
  dir=$LAB_STATE/secrets/salt-master
  current=$(lab_exec "$master" cat /etc/salt/pki/master/master.pub 2>/dev/null || true)
  if [ -n "$current" ]; then
    [ "$current" = "$(cat "$dir/master.pub")" ] && return 0
    die "the master $master runs with another key than the lab's ($dir/master.pub): every minion pins the lab's" \
      "rebuild the master (vagrant destroy -f $master; ./lab up), or copy its key pair into $dir and ./lab up again"
  fi
  step "installing the lab's master key pair on $master and starting salt-master"
  lab_exec "$master" install -d -m 0700 /etc/salt/pki/master
  lab_exec "$master" install -m 0400 /dev/stdin /etc/salt/pki/master/master.pem <"$dir/master.pem" \
    && lab_exec "$master" install -m 0644 /dev/stdin /etc/salt/pki/master/master.pub <"$dir/master.pub" \
    && lab_exec "$master" systemctl enable -q --now salt-master \
    || die "installing the master's key pair on $master failed" "./lab ssh $master, then: journalctl -u salt-master"
}

# The master gets each machine's secrets GPG-encrypted to its own key.
install_secrets() {
  step "installing the encrypted secrets pillar on $(lab_master)"
  tar -C "$LAB_STATE/secrets/minions" -cf - . \
    | lab_exec "$(lab_master)" /opt/salt/bin/python /srv/lemp-ha/tools/lab/provision/encrypt-secrets.py >&2 \
    || die "encrypting the secrets on the master failed" "see the message above"
}

# A lemp-ha container this checkout's Vagrant does not know (left by another
# checkout, or by a run that was killed) would make `vagrant up` fail with
# "container already exists": remove it, the lab is rebuilt from scratch.
remove_stray_containers() {
  local container name
  for container in $(lxc-ls 2>/dev/null | tr ' ' '\n' | grep '^lemp-ha-' || true); do
    name=${container#lemp-ha-}
    if [ "$(cat "$LAB_REPO/.vagrant/machines/$name/lxc/id" 2>/dev/null)" != "$container" ]; then
      info "removing container $container: this checkout's Vagrant does not know it"
      lxc-stop -k -n "$container" >/dev/null 2>&1 || true
      lxc-destroy -n "$container" >/dev/null 2>&1 || die "could not remove the stray container $container" "lxc-destroy -f -n $container"
    fi
  done
}

vagrant_up() {
  local name
  # Vagrant reaches the machines over SSH: only once their addresses go over the bridge.
  for name in $(lab_machines); do require_lab_route "$(lab_address "$name")"; done
  remove_stray_containers
  step "booting the lab machines in parallel: $(lab_machines | tr '\n' ' ')"
  local log=$LAB_STATE/vagrant-up.log
  # One progress line per machine and phase; the whole output goes to $log.
  vagrant up --parallel --provider=lxc 2>&1 | tee "$log" \
    | grep --line-buffered -E '^==> [a-z0-9-]+: (Importing|Starting|Machine booted|Running provisioner|Setting hostname)' >&2 || true
  # vagrant up provisions only the machines it creates: repair the others,
  # and pin the master's key on minions configured before it was pinned.
  local name finger
  finger=$(cat "$LAB_STATE/secrets/salt-master/master_finger")
  for name in $(lab_machines); do
    if ! lab_exec "$name" grep -qxF "master_finger: '$finger'" /etc/salt/minion.d/00-lemp-ha-bootstrap.conf 2>/dev/null; then
      info "provisioning $name again (its minion does not pin the master's key yet)"
      vagrant provision "$name" >>"$log" 2>&1 || echo "An error occurred while provisioning $name" >>"$log"
    elif ! lab_exec "$name" systemctl is-active -q salt-minion 2>/dev/null; then
      info "provisioning $name again (its minion is not running)"
      vagrant provision "$name" >>"$log" 2>&1 || echo "An error occurred while provisioning $name" >>"$log"
    fi
  done
  # Only the topology's machines: the scaling pool's (web3...) stay off until
  # orch.scale_out or `vagrant up NAME` boots them.
  local bad
  bad=$(vagrant status --machine-readable 2>/dev/null \
    | awk -F, -v want=" $(lab_machines | tr '\n' ' ') " '$3=="state" && $4!="running" && index(want, " " $2 " ") {print $2}')
  if [ -n "$bad" ] || grep -q 'VM, not the ones that failed\|An error occurred\|did not complete successfully' "$log"; then
    report_vagrant_failure "$log" "$bad"
  fi
}

# report_vagrant_failure LOG [MACHINES]: name, per machine, the lines of
# the `vagrant up` log that hold the error, with the fix; then stop.
report_vagrant_failure() {
  local log=$1 bad=${2:-} causes
  # vagrant_errors.py exits 1 when it found errors: that is the usual case here.
  causes=$("$HOST_PYTHON" "$LAB_REPO/tools/lab/vagrant_errors.py" "$log") || true
  if [ -n "$causes" ]; then
    printf '%s\n' "$causes" >&2
  else
    # No machine block: a failure before any machine (Vagrantfile, box, plugin).
    { grep -E 'ERROR|error|failed' "$log" || true; } | tail -n 15 >&2
  fi
  die "machine(s) did not come up: ${bad:-see above}" "the fix per machine is above; full log: $log"
}

# No key is accepted on a shared secret nor on first sight: each machine of
# the topology has its own key pre-accepted on the master, read from the
# machine itself through lxc-attach (no network). Pool machines get theirs
# minted by the master instead (Vagrantfile, lemp_enrol.mint).
accept_machine_keys() {
  local name pub i
  step "pre-accepting each machine's own minion key on $(lab_master)"
  for name in $(lab_machines); do
    pub=
    for i in $(seq 60); do
      pub=$(lab_exec "$name" cat /etc/salt/pki/minion/minion.pub 2>/dev/null) && [ -n "$pub" ] && break
      sleep 1
    done
    [ -n "$pub" ] || die "$name made no minion key in 60 s" "./lab ssh $name, then: journalctl -u salt-minion"
    accept_minion_key "$name" "$pub"
  done
}

# orch.site's salt/master state restarts the master once no salt-run is left
# (a transient systemd timer, salt/master/service.sls): wait for it, then
# for the minions to be back.
wait_for_master_config() {
  local master unit=lemp-ha-salt-master-restart i
  master=$(lab_master)
  for i in $(seq 120); do
    lab_exec "$master" systemctl is-active -q "$unit.timer" "$unit.service" 2>/dev/null || break
    [ "$i" = 1 ] && step "waiting for the master to restart onto the configuration orch.site gave it"
    sleep 1
  done
  lab_exec "$master" systemctl is-active -q "$unit.timer" "$unit.service" 2>/dev/null \
    && die "the master's restart onto its new configuration is still pending after 120 s" \
      "./lab ssh $master, then: journalctl -u $unit"
  lab_exec "$master" systemctl is-active -q salt-master \
    || die "salt-master is not running on $master after its configuration changed" \
      "./lab ssh $master, then: journalctl -u salt-master -u $unit"
  wait_for_minions
}

# Wait until every machine of the topology answers.
wait_for_minions() {
  local master expected missing i
  master=$(lab_master)
  expected=$(lab_machines | sort | tr '\n' ' ')
  step "waiting for every minion to answer the master"
  for i in $(seq 120); do
    missing=$(comm -23 <(lab_machines | sort) <(salt_on_master "salt --out=txt --timeout=5 '*' test.ping 2>/dev/null" | awk -F: '$2 ~ /True/ {print $1}' | sort))
    [ -z "$missing" ] && { info "all answer: $expected"; return 0; }
    [ $((i % 10)) = 0 ] && info "still waiting for: $(echo $missing)"
    sleep 1
  done
  die "minion(s) never answered: $(echo $missing)" "./lab ssh $master, then: salt-key -L; journalctl -u salt-minion on the missing machine"
}

salt_on_master() {
  lab_exec "$(lab_master)" bash -c "$1"
}

# Runs an orchestration, shows each minion's job as it finishes, and names
# every failed state with its minion when it is over.
run_orch() {
  local name=$1 out rc=0 watcher
  step "running salt-run state.orchestrate orch.$name (one line per finished minion job)"
  out=$LAB_STATE/orch-$name.json
  # unbuffered, or salt-run holds the events back until it exits
  lab_exec "$(lab_master)" env PYTHONUNBUFFERED=1 salt-run state.event 'salt/job/*/ret/*' 2>/dev/null \
    | "$HOST_PYTHON" "$LAB_REPO/tools/lab/orch_progress.py" &
  watcher=$!
  lab_exec "$(lab_master)" salt-run --out=json --state-verbose=False state.orchestrate "orch.$name" >"$out" 2>"$out.err" || rc=$?
  lab_exec "$(lab_master)" pkill -f 'salt-run state.event' || true
  wait "$watcher" 2>/dev/null || true
  "$HOST_PYTHON" "$LAB_REPO/tools/lab/orch_report.py" "$out" || rc=1
  [ $rc = 0 ] || die "orch.$name failed (details above; full output in $out)" "fix the state named above, then run ./lab up again"
}

print_summary() {
  local t0=$1 vip internal_vip lbs
  vip=$(topo_get "t['network']['vip']")
  internal_vip=$(topo_get "t['network']['internal_vip']")
  lbs=$(topo_get "[m['address'] for n, m in t['machines'].items() if 'lb' in m['roles']]" | tr '\n' ' ')
  step "the lab is up ($((SECONDS - t0)) s)"
  lab_status
  cat >&2 <<MSG

  Application:         https://$vip/   (HTTP redirects to HTTPS)
                       curl --cacert $LAB_STATE/secrets/ca.pem https://$vip/?format=json
  Database endpoint:   $internal_vip:3306 (single writer; user app), Redis sessions $internal_vip:6379:
                       from the web nodes only (the firewall, pillar/ports.yaml; docs/security.md)
  HAProxy stats:       $(for a in $lbs; do printf 'http://%s:8404/  ' "$a"; done)(lab subnet only; user haproxy-stats, password haproxy_stats in passwords.yaml)
  Salt master:         ./lab ssh $(lab_master)   then  sudo salt '*' test.ping
  Credentials:         $LAB_STATE/secrets/ (root only, generated for this lab, never in the repo):
                       passwords.yaml, ca.pem (the lab CA to trust)
  Tear down:           ./lab down
MSG
}
