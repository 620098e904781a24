# ./lab down, status, ssh. Sourced by ./lab.
# shellcheck shell=bash

lab_down() {
  need_root
  step "destroying the lab machines"
  vagrant destroy -f --parallel >/dev/null 2>&1 || true
  # Anything vagrant lost track of (a half-created lab) goes too.
  local name
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
