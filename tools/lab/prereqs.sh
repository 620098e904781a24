# Host prerequisites, from Debian's archive. Sourced by ./lab.
# shellcheck shell=bash

HOST_PACKAGES="openssl vagrant vagrant-lxc lxc lxc-templates debootstrap apt-cacher-ng iproute2 iptables curl python3 python3-yaml python3-venv rsync sudo"

install_prereqs() {
  local missing=() pkg
  for pkg in $HOST_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep 'ok installed' >/dev/null || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing host packages: ${missing[*]}"
    [ -r /etc/debian_version ] && command -v apt-get >/dev/null || die "the lab host must be Debian 12" "use a Debian 12 machine, or a VM of one"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      || die "apt-get update failed" "check that Debian's mirror is reachable"
    # The package scripts try to start services; there may be no init to do it.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || die "installing ${missing[*]} failed" "run: apt-get install ${missing[*]}"
  fi
  command -v lxc-create >/dev/null || die "LXC is not installed" "apt-get install lxc"
  [ -d /sys/fs/cgroup ] || die "this host has no cgroup filesystem: LXC cannot run here" "use a VM or bare-metal Debian 12"
}
