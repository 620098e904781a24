# ./lab down, status, ssh, secrets. Sourced by ./lab.
# shellcheck shell=bash

lab_down() {
  need_root
  labhost_down
  step "destroying the lab machines"
  # Killed first, all at once: a clean shutdown of machines about to be
  # destroyed is only time (vagrant-lxc stops each one gracefully).
  local name kills=()
  for name in $(lxc-ls 2>/dev/null | tr ' ' '\n' | grep '^lemp-ha-' || true); do
    lxc-stop -k -n "$name" >/dev/null 2>&1 &
    kills+=($!)
  done
  # these only: the shell may have other children (the apt proxy)
  [ ${#kills[@]} = 0 ] || wait "${kills[@]}" || true
  vagrant destroy -f --parallel >/dev/null 2>&1 || true
  # Anything vagrant lost track of (a half-created lab) goes too.
  for name in $(lxc-ls 2>/dev/null | tr ' ' '\n' | grep '^lemp-ha-' || true); do
    info "removing leftover container $name"
    lxc-stop -k -n "$name" >/dev/null 2>&1 || true
    lxc-destroy -n "$name" >/dev/null 2>&1 || true
  done
  rm -rf "$LAB_REPO/.vagrant/machines"
  apt_proxy_down
  bridge_down
  step "the lab is down (caches kept in $LAB_CACHE; lab secrets kept in $LAB_STATE)"
}

lab_status() { lemplab status >&2; }

lab_ssh() {
  [ -n "${1:-}" ] || die "usage: ./lab ssh NAME" "NAME is one of: $(lab_machines | tr '\n' ' ')"
  lab_machines | grep -x "$1" >/dev/null || die "no machine '$1' in the topology" "one of: $(lab_machines | tr '\n' ' ')"
  local name=$1; shift
  require_lab_route "$(lab_address "$name")"
  exec vagrant ssh "$name" "$@"
}

# ./lab secrets add NAME...: the app's own secrets (pillar app:secrets names
# them; values in app_secrets:<NAME>). A new name gets a random value, an
# existing one keeps its value; every machine's secrets file is written again,
# the master gets them re-encrypted, and the machines that receive app
# secrets (roles.yaml: app_secrets) refresh their pillar. ./lab up keeps them.
#
# ./lab secrets rotate NAME [MACHINE]: orch.rotate_secret with a new random
# value, encrypted on the master; the lab's copy follows once the master
# holds it. MACHINE: a per-machine key (zabbix_psk) of that machine only.
lab_secrets_cmd() {
  if [ "${1:-}" = rotate ] && { [ $# -eq 2 ] || [ $# -eq 3 ]; }; then
    need_root
    step "rotating $2${3:+ of $3} (orch.rotate_secret)"
    lemplab rotate-secret "$2" ${3:+"$3"} || die "rotating $2 failed" "see the message above; docs/secrets.md, Rotation"
    return
  fi
  [ "${1:-}" = add ] && [ $# -ge 2 ] \
    || die "usage: ./lab secrets add NAME... | ./lab secrets rotate NAME [MACHINE]" "NAME: a name the app lists in pillar app:secrets (A-Z a-z 0-9 _, not starting with a digit); rotate: a password of pillar/secrets.spec.yaml, or zabbix_psk (MACHINE: that one only) (docs/secrets.md)"
  shift
  need_root
  install -d -m 0700 "$LAB_STATE"
  step "adding app secrets: $*"
  "$HOST_PYTHON" "$LAB_REPO/tools/lab/lab_secrets.py" add-app-secrets "$LAB_STATE" "$LAB_TOPOLOGY" \
    "$LAB_REPO/pillar/secrets.spec.yaml" "$@" >/dev/null || die "adding the app secrets failed" "see the message above"
  lxc-info -n "lemp-ha-$(lab_master)" -s 2>/dev/null | grep -q RUNNING \
    || die "the master $(lab_master) is not running: the values are kept in $LAB_STATE/secrets/app_secrets.yaml" "run ./lab up"
  install_secrets
  local targets
  targets=$(topo_get "[n for n, m in t['machines'].items() if 'app_secrets' in m['secrets']]" | paste -sd, -)
  [ -n "$targets" ] || die "no machine receives app secrets" "add app_secrets to a role's secrets: in pillar/roles.yaml"
  step "refreshing the pillar on $targets"
  salt_on_master "salt --out=txt -L '$targets' saltutil.refresh_pillar wait=True" >&2 \
    || die "refreshing the pillar on $targets failed" "./lab ssh $(lab_master), then: salt -L '$targets' saltutil.refresh_pillar"
  info "values (root only): $LAB_STATE/secrets/app_secrets.yaml; apply them with orch.site or a highstate"
}
