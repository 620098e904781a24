# Host prerequisites, from Debian's archive. Sourced by ./lab.
# shellcheck shell=bash
#
# Every host command and file the lab and the tests use must come from one of
# these lists: `./lab test` proves it on a fresh Debian 12 root
# (tools/lab/fresh_root.sh), checking what tools/lab/host_requirements.py
# finds in the code.

# ./lab up: LXC and its shared configs (lxc-templates ships the
# debian.common.conf the box includes), Vagrant with the LXC provider, the
# box builder, the apt proxy, the bridge and its firewall rule; a C compiler
# and Python's headers, because salt's dependency timelib has no binary wheel
# (the box's wheels and the test virtualenv build it).
LAB_HOST_PACKAGES="openssl vagrant vagrant-lxc lxc lxc-templates debootstrap apt-cacher-ng iproute2 iptables curl python3 python3-yaml python3-venv python3-dev gcc libc6-dev rsync sudo"
# ./lab test, besides: a real haproxy for the runtime-API unit tests, the
# libvirt plugin so that the Vagrantfile's libvirt block is validated,
# pgrep for the teardown test; systemd-analyze for the cron schedule tests
# (a minbase root has no systemd); a real redis-server and redis-cli for the
# lemp-cron-once tests (on loopback); for bench/: ab, and requests for the lab
# driver's HTTPS sessions under the host's python3.
TEST_HOST_PACKAGES="haproxy vagrant-libvirt procps apache2-utils python3-requests systemd redis-server redis-tools"

# install_packages PKG...: install those not installed yet. Their services
# are not started: the lab runs its own apt proxy, and tests start their own
# haproxy on loopback.
install_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep 'ok installed' >/dev/null || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  step "installing host packages: ${missing[*]}"
  [ -r /etc/debian_version ] && command -v apt-get >/dev/null || die "the lab host must be Debian 12" "use a Debian 12 machine, or a VM of one"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    || die "apt-get update failed" "check that Debian's mirror is reachable"
  local policy=/usr/sbin/policy-rc.d keep_policy=0 rc=0 pkg
  [ -e "$policy" ] && keep_policy=1
  if [ $keep_policy = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | install -m 0755 /dev/stdin "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT  # an interrupted install must not leave it
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  if [ $keep_policy = 0 ]; then
    rm -f "$policy"
    trap - EXIT
  fi
  [ $rc = 0 ] || die "installing ${missing[*]} failed" "run: apt-get install --no-install-recommends ${missing[*]}"
  # Nor at the next boot: the lab runs its own apt proxy on port 3142, and
  # the tests their own haproxy on loopback.
  for pkg in "${missing[@]}"; do
    case "$pkg" in
      apt-cacher-ng | haproxy) systemctl disable --quiet "$pkg" >/dev/null 2>&1 || true ;;
    esac
  done
}

install_prereqs() {
  install_packages $LAB_HOST_PACKAGES
  command -v lxc-create >/dev/null || die "LXC is not installed" "apt-get install lxc"
}

install_test_prereqs() {
  install_packages $TEST_HOST_PACKAGES
}

# LXC needs a cgroup filesystem (a chroot or a restricted container has none).
check_lxc_host() {
  [ -d /sys/fs/cgroup ] || die "this host has no cgroup filesystem: LXC cannot run here" "use a VM or bare-metal Debian 12"
}
