# Build the lab's Debian 12 box for vagrant-lxc with debootstrap. Sourced by ./lab.
# The box carries salt (from wheels built here) so that machines boot ready.
# shellcheck shell=bash

BOX_PACKAGES=systemd-sysv,dbus,openssh-server,sudo,python3,python3-venv,ca-certificates,iproute2,iputils-ping,procps,psmisc,curl,gnupg,less,netcat-openbsd

# Changing any of these files makes a new box.
box_fingerprint() {
  (cd "$LAB_REPO/tools/lab" && find build-box.sh box-requirements.txt box-files -type f | sort | xargs cat) \
    | sha256sum | cut -c1-12
}

build_wheels() {
  local dir=$LAB_CACHE/wheels fp
  fp=$(sha256sum "$LAB_REPO/tools/lab/box-requirements.txt" | cut -c1-12)
  [ -f "$dir/.complete-$fp" ] && return 0
  step "building Python wheels for the box (salt $SALT_VERSION; once, cached in $dir)"
  rm -rf "$dir" "$LAB_CACHE/wheel-venv"
  mkdir -p "$dir"
  # Debian's own python3 builds them: it is the same 3.11 as the box's.
  /usr/bin/python3 -m venv "$LAB_CACHE/wheel-venv"
  "$LAB_CACHE/wheel-venv/bin/pip" install -q -U pip wheel setuptools >"$LAB_CACHE/wheels.log" 2>&1 \
    || die "could not install pip/wheel from PyPI" "check that PyPI is reachable"
  "$LAB_CACHE/wheel-venv/bin/pip" wheel -q -w "$dir" -r "$LAB_REPO/tools/lab/box-requirements.txt" >"$LAB_CACHE/wheels.log" 2>&1 \
    || die "building the salt wheels failed" "see $LAB_CACHE/wheels.log"
  touch "$dir/.complete-$fp"
}

box_installed_fingerprint() {
  vagrant box list --machine-readable 2>/dev/null | grep ",box-name,$BOX_NAME\$" >/dev/null || return 0
  cat "$LAB_CACHE/box/installed" 2>/dev/null || true
}

ensure_box() {
  local fp
  fp=$(box_fingerprint)
  if [ "$(box_installed_fingerprint)" = "$fp" ]; then
    info "box $BOX_NAME is up to date ($fp)"
    return 0
  fi
  local boxfile=$LAB_CACHE/box/lemp-ha-debian12-$fp.box
  [ -f "$boxfile" ] || build_box "$boxfile"
  step "adding the box $BOX_NAME to vagrant"
  vagrant box add --force --name "$BOX_NAME" "$boxfile" >/dev/null || die "vagrant box add failed" "remove $boxfile and run ./lab up again"
  echo "$fp" >"$LAB_CACHE/box/installed"
}

build_box() {
  local boxfile=$1 work rootfs mirror
  build_wheels
  work=$LAB_CACHE/box/build
  rootfs=$work/rootfs
  rm -rf "$work"; mkdir -p "$rootfs"
  # Through the apt proxy, so the packages are cached for the VMs too.
  mirror=http://127.0.0.1:3142/deb.debian.org/debian
  step "debootstrap Debian 12 into $rootfs (a few minutes the first time)"
  debootstrap --variant=minbase --include="$BOX_PACKAGES" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || die "debootstrap failed" "see $work/debootstrap.log"

  step "installing salt $SALT_VERSION and the vagrant user into the box"
  cp -a "$LAB_REPO/tools/lab/box-files/." "$rootfs/"
  mkdir -p "$rootfs/tmp/wheels"
  cp "$LAB_CACHE/wheels/"*.whl "$rootfs/tmp/wheels/"
  cp "$LAB_REPO/tools/lab/box-requirements.txt" "$rootfs/tmp/wheels/"
  install -D -m 0644 "$(vagrant_insecure_key)" "$rootfs/tmp/vagrant.pub"
  chroot "$rootfs" /bin/bash /usr/local/sbin/lemp-ha-box-setup >"$work/setup.log" 2>&1 \
    || die "configuring the box failed" "see $work/setup.log"
  rm -rf "$rootfs/tmp/"* "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*_dists_* \
    "$rootfs/usr/local/sbin/lemp-ha-box-setup"

  step "packing the box"
  # --xattrs keeps file capabilities (ping, ...) that a plain tar drops.
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$work" -czf "$work/rootfs.tar.gz" ./rootfs
  cat >"$work/metadata.json" <<META
{"provider": "lxc", "version": "1.0.0", "built-on": "$(date -u +%FT%TZ)"}
META
  cat >"$work/lxc-config" <<CONF
lxc.include = /usr/share/lxc/config/debian.common.conf
lxc.arch = amd64
lxc.apparmor.profile = unconfined
CONF
  mkdir -p "$(dirname "$boxfile")"
  tar -C "$work" -czf "$boxfile.tmp" metadata.json lxc-config rootfs.tar.gz
  mv "$boxfile.tmp" "$boxfile"
  rm -rf "$work"
  find "$(dirname "$boxfile")" -name '*.box' ! -name "$(basename "$boxfile")" -delete
}

vagrant_insecure_key() {
  local key
  key=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n1)
  [ -n "$key" ] || die "vagrant's insecure public key was not found" "install the vagrant package"
  echo "$key"
}
