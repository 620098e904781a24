# Build the lab's Debian 12 box for vagrant-lxc with debootstrap. Sourced by ./lab.
# The box, lemp-ha/debian12: Debian 12 + salt (from wheels built here) + the
# packages of `common`, their services disabled, so that machines boot
# ready and their first highstate installs nothing of `common`: every
# machine applies it, and installing its packages (nftables, rsyslog, the
# Zabbix agent, needrestart...) took 20-27 s per machine and tier, about
# 90 s of `./lab up`. The list comes from the states themselves
# (tools/lab/web_box.py plan-sls common); the highstates still install them
# on a machine that lacks them.
# shellcheck shell=bash

BOX_PACKAGES=systemd-sysv,dbus,openssh-server,sudo,python3,python3-venv,ca-certificates,iproute2,iputils-ping,procps,psmisc,curl,gnupg,less,netcat-openbsd
BOX_DESCRIPTION="Debian 12 + salt + the packages of common"
# gzip's fastest level: packing a box took 37 s at the default level on the
# 2-core CI machine, for a box that is unpacked on this host only.
BOX_GZIP="gzip -1"

# The plain box's plan ({"packages", "services"} of `common`, rendered with
# Salt from the test virtualenv) and fingerprint: once per command. Call it
# directly (not in $(...)), so that the callers after it reuse them.
BOX_PLAN="" BOX_FP=""
load_box_plan() {
  [ -z "$BOX_FP" ] || return 0
  ensure_venv
  BOX_PLAN=$(box_plan plan-sls common) || die "reading the packages of common from its states failed" "see the message above"
  # Changing any of these files, or what `common` installs, makes a new box.
  BOX_FP=$({ (cd "$LAB_REPO/tools/lab" && find build-box.sh box-requirements.txt box-files web_box.py -type f \
                | sort | xargs cat); printf '%s' "$BOX_PLAN"; } | sha256sum | cut -c1-12)
}

box_fingerprint() {
  load_box_plan
  echo "$BOX_FP"
}

# box_plan ARGS: `web_box.py ARGS` (plan ROLE, plan-sls SLS), rendered once
# per change of what the render reads (the master's file and pillar roots, the topology,
# Salt's virtualenv) and kept in $LAB_CACHE/box: a render takes 7-10 s, and
# ./lab up asks for two plans each time.
box_plan() {
  local key files cached plan
  ensure_venv
  # (one line: tools/lab/host_requirements.py reads a continued line's
  # start as a command)
  local read_by_render="salt pillar _modules _states _runners orch reactor app tools/lab/web_box.py tools/lab/lab_secrets.py"
  # shellcheck disable=SC2086  # one word per path
  files=$(cd "$LAB_REPO" && find $read_by_render -type f ! -name '*.pyc' | sort)
  key=$({ printf '%s\n' "$*" "$LAB_VENV" "$files"; (cd "$LAB_REPO" && printf '%s\n' "$files" | xargs -d '\n' cat); \
          cat "$LAB_TOPOLOGY"; } | sha256sum | cut -c1-12)
  cached=$LAB_CACHE/box/plan-${1}-${2:-}-$key.json
  if [ -s "$cached" ]; then cat "$cached"; return 0; fi
  plan=$("$LAB_VENV/bin/python" "$LAB_REPO/tools/lab/web_box.py" "$@") || return 1
  mkdir -p "$LAB_CACHE/box"
  find "$LAB_CACHE/box" -maxdepth 1 -name "plan-${1}-${2:-}-*.json" -delete
  printf '%s\n' "$plan" >"$cached.tmp" && mv "$cached.tmp" "$cached"
  printf '%s\n' "$plan"
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

# box_installed_fingerprint [NAME MARKER]: the fingerprint of the box NAME
# vagrant has (kept in $LAB_CACHE/box/MARKER), or nothing.
box_installed_fingerprint() {
  local name=${1:-$BOX_NAME} marker=${2:-installed}
  vagrant box list --machine-readable 2>/dev/null | grep ",box-name,$name\$" >/dev/null || return 0
  cat "$LAB_CACHE/box/$marker" 2>/dev/null || true
}

ensure_box() {
  local fp
  load_box_plan
  fp=$BOX_FP
  if [ "$(box_installed_fingerprint)" = "$fp" ]; then
    info "box $BOX_NAME ($BOX_DESCRIPTION) is up to date ($fp)"
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
  load_box_plan
  build_wheels
  work=$LAB_CACHE/box/build
  rootfs=$work/rootfs
  box_work_clean "$work"; mkdir -p "$rootfs"
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

  step "installing the packages of common into the box: $(plan_words packages "$BOX_PLAN"), services off (once per change)"
  bake_packages "$rootfs" "$BOX_PLAN" >"$work/bake.log" 2>&1 \
    || die "installing the packages of common into the box failed" "see $work/bake.log"
  rm -rf "$rootfs/tmp/"* "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*_dists_* \
    "$rootfs/usr/local/sbin/lemp-ha-box-setup"

  step "packing the box ($BOX_DESCRIPTION)"
  # --xattrs keeps file capabilities (ping, ...) that a plain tar drops.
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$work" -I "$BOX_GZIP" -cf "$work/rootfs.tar.gz" ./rootfs
  cat >"$work/metadata.json" <<META
{"provider": "lxc", "version": "1.0.0", "built-on": "$(date -u +%FT%TZ)", "baked": "common"}
META
  cat >"$work/lxc-config" <<CONF
lxc.include = /usr/share/lxc/config/debian.common.conf
lxc.arch = amd64
lxc.apparmor.profile = unconfined
CONF
  mkdir -p "$(dirname "$boxfile")"
  tar -C "$work" -I "$BOX_GZIP" -cf "$boxfile.tmp" metadata.json lxc-config rootfs.tar.gz
  mv "$boxfile.tmp" "$boxfile"
  rm -rf "$work"
  find "$(dirname "$boxfile")" -name 'lemp-ha-debian12-????????????.box' ! -name "$(basename "$boxfile")" -delete
}

# The web pool's box, lemp-ha/debian12-web: the plain box with the web role's
# packages installed and their services disabled, as a baked AMI would be, so
# that a pool machine's first highstate only configures (docs/scaling.md).
# The packages and services come from the web role's states themselves
# (tools/lab/web_box.py renders its highstate); the box is rebuilt when they,
# or the plain box, change. LEMP_HA_WEB_BOX=plain skips it: the pool then
# boots from the plain box (the Vagrantfile reads the same switch).
WEB_BOX_NAME=lemp-ha/debian12-web
WEB_BOX_FILE="" WEB_BOX_FP="" WEB_BOX_PID=""
WEB_BOX_LOG=$LAB_CACHE/web-box.log

ensure_web_box() {
  web_box_begin
  web_box_end
}

# ./lab up bakes the web box beside the boot and orch.site (web_box_begin
# ... web_box_end): only a pool VM needs it, and on a machine with no
# caches the bake is minutes of the bring-up. web_box_end waits for it and
# adds it to vagrant (vagrant itself only in the foreground) before the lab
# is called up.
web_box_begin() {
  if [ "${LEMP_HA_WEB_BOX:-baked}" = plain ]; then
    info "LEMP_HA_WEB_BOX=plain: the web pool boots from $BOX_NAME ($BOX_DESCRIPTION; the web role's installed by its highstate)"
    return 0
  fi
  local plan fp boxfile
  ensure_venv
  plan=$(box_plan plan web) || die "reading the web role's packages from its states failed" "see the message above"
  fp=$({ box_fingerprint; cat "$LAB_REPO/tools/lab/web_box.py"; printf '%s' "$plan"; } | sha256sum | cut -c1-12)
  if [ "$(box_installed_fingerprint "$WEB_BOX_NAME" web-installed)" = "$fp" ]; then
    info "box $WEB_BOX_NAME is up to date ($fp)"
    return 0
  fi
  boxfile=$LAB_CACHE/box/lemp-ha-debian12-web-$fp.box
  WEB_BOX_FILE=$boxfile WEB_BOX_FP=$fp
  [ -f "$boxfile" ] && return 0
  step "baking the web box in the background, beside the boot ($WEB_BOX_LOG)"
  # at a lower priority: orch.site, on the same 2 cores, is what the
  # bring-up waits for; the bake only has to end before it does
  ( renice -n 10 -p "$BASHPID" >/dev/null; build_web_box "$boxfile" "$plan" ) >"$WEB_BOX_LOG" 2>&1 &
  WEB_BOX_PID=$!
  # ./lab test's EXIT trap calls web_box_abort already; ./lab up has none
  [ -n "$(trap -p EXIT)" ] || trap web_box_abort EXIT
}

web_box_end() {
  [ -n "$WEB_BOX_FILE" ] || return 0
  if [ -n "$WEB_BOX_PID" ]; then
    info "waiting for the web box bake (pid $WEB_BOX_PID)"
    if ! wait "$WEB_BOX_PID"; then
      tail -n 20 "$WEB_BOX_LOG" >&2
      die "baking the web box failed" "see $WEB_BOX_LOG and $LAB_CACHE/box/build-web/bake.log, then ./lab up again"
    fi
    sed 's/\x1b\[[0-9;]*m//g' "$WEB_BOX_LOG" | grep -E '^==>' | sed 's/^==> /    done: /' >&2 || true
    WEB_BOX_PID=""
  fi
  step "adding the box $WEB_BOX_NAME to vagrant"
  vagrant box add --force --name "$WEB_BOX_NAME" "$WEB_BOX_FILE" >/dev/null \
    || die "vagrant box add failed" "remove $WEB_BOX_FILE and run ./lab up again"
  echo "$WEB_BOX_FP" >"$LAB_CACHE/box/web-installed"
  WEB_BOX_FILE=""
}

build_web_box() {
  local boxfile=$1 plan=$2 plain work rootfs lock
  plain=$LAB_CACHE/box/lemp-ha-debian12-$(box_fingerprint).box
  [ -f "$plain" ] || die "the plain box $plain is missing" "run ./lab box"
  work=$LAB_CACHE/box/build-web
  rootfs=$work/rootfs
  # One bake at a time: a second ./lab up, run while an orphaned bake of an
  # earlier one still works, waits for it rather than deleting its tree.
  exec {lock}>"$LAB_CACHE/box/build-web.lock"
  flock "$lock"
  if [ -f "$boxfile" ]; then echo "the web box was baked meanwhile: $boxfile"; return 0; fi
  box_work_clean "$work"; mkdir -p "$work"
  step "baking the web box: the plain box + $(plan_words packages "$plan") of the web role, services off (once per change)"
  tar -C "$work" -xzf "$plain" lxc-config rootfs.tar.gz
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$work" -xzf "$work/rootfs.tar.gz"
  rm -f "$work/rootfs.tar.gz"
  bake_packages "$rootfs" "$plan" >"$work/bake.log" 2>&1 || die "baking the web box failed" "see $work/bake.log"
  step "packing the web box"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$work" -I "$BOX_GZIP" -cf "$work/rootfs.tar.gz" ./rootfs
  cat >"$work/metadata.json" <<META
{"provider": "lxc", "version": "1.0.0", "built-on": "$(date -u +%FT%TZ)", "baked": "web"}
META
  tar -C "$work" -I "$BOX_GZIP" -cf "$boxfile.tmp" metadata.json lxc-config rootfs.tar.gz
  mv "$boxfile.tmp" "$boxfile"
  box_work_clean "$work"
  find "$(dirname "$boxfile")" -name 'lemp-ha-debian12-web-*.box' ! -name "$(basename "$boxfile")" -delete
}

# box_work_clean DIR: remove a bake's work folder, unmounting what a bake
# that was killed left mounted in it first (its chroot's /proc): rm would
# fail there, and every later bake with it.
box_work_clean() {
  unmount_under "$1"
  rm -rf --one-file-system "$1"
}

# web_box_abort: on a ./lab up or ./lab test that stops before web_box_end,
# stop the background bake (it would go on alone, with apt in a chroot and
# its /proc mounted) and clean up after it. Called by their EXIT traps.
web_box_abort() {
  [ -n "${WEB_BOX_PID:-}" ] || return 0
  kill_tree "$WEB_BOX_PID"
  wait "$WEB_BOX_PID" 2>/dev/null || true
  WEB_BOX_PID=""
  box_work_clean "$LAB_CACHE/box/build-web"
}

# kill_tree PID: PID and every process under it, children first.
kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}

# plan_field FIELD PLAN: the plan's packages or services, one line, spaces between.
plan_field() {
  printf '%s' "$2" | "$HOST_PYTHON" -c 'import json, sys; print(" ".join(json.load(sys.stdin)[sys.argv[1]]))' "$1"
}

# plan_words FIELD PLAN: "N packages" / "N services".
plan_words() {
  echo "$(plan_field "$1" "$2" | wc -w) $1"
}

# bake_packages ROOTFS PLAN: install the plan's packages into the box's
# root, as a baked image would carry them, and disable the services the
# states enable: the highstate enables and starts them once it has
# configured them. A unit enabled before the install is the box's own
# (ssh: vagrant logs in with it) and stays. Output: the caller's log.
bake_packages() {
  local rootfs=$1 plan=$2 packages services unit before=" " rc=0
  packages=$(plan_field packages "$plan")
  services=$(plan_field services "$plan")
  # Nothing starts in the chroot; packages come through the apt proxy;
  # needrestart (of `common`) lists nothing from the host's /proc.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d" && chmod 0755 "$rootfs/usr/sbin/policy-rc.d" \
    && mount -t proc proc "$rootfs/proc" || return 1
  for unit in $services; do
    if box_unit_enabled "$rootfs" "$unit"; then before+="$unit "; fi
  done
  {
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
      apt-get -o Acquire::http::Proxy=http://127.0.0.1:3142/ -o Acquire::Retries=3 update -qq &&
    # shellcheck disable=SC2086  # one word per package
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 NEEDRESTART_SUSPEND=1 \
      apt-get -o Acquire::http::Proxy=http://127.0.0.1:3142/ -o Acquire::Retries=3 \
      install -y -q --no-install-recommends $packages &&
    for unit in $services; do
      case $before in *" $unit "*) echo "keeping $unit enabled: the box enabled it before"; continue ;; esac
      # The syslog daemon stays enabled: disabling it removes its alias
      # syslog.service, which systemd's syslog.socket starts; without it
      # rsyslog cannot start ("A dependency job for rsyslog.service failed",
      # the CI rehearsal of a8962e3). Other aliases (redis.service...) are
      # not started by another unit: those units are disabled as the rest.
      if box_unit_is_syslog "$rootfs" "$unit"; then echo "keeping $unit enabled: it is syslog.service"; continue; fi
      # units the states write (lemp-ha-*) do not exist yet: nothing to disable
      box_unit_enabled "$rootfs" "$unit" || continue
      chroot "$rootfs" env SYSTEMD_OFFLINE=1 systemctl disable "$unit" && ! box_unit_enabled "$rootfs" "$unit" \
        || { echo "could not disable $unit in the box"; rc=1; }
    done &&
    chroot "$rootfs" apt-get clean
  } || rc=$?
  umount "$rootfs/proc"
  rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/var/lib/apt/lists/"*_dists_*
  return $rc
}

# box_unit_is_syslog ROOTFS UNIT: whether UNIT's unit file declares Alias=syslog.service.
box_unit_is_syslog() {
  local name=${2%.service}
  grep -qsx 'Alias=syslog.service' "$1/usr/lib/systemd/system/$name.service" "$1/lib/systemd/system/$name.service"
}

# box_unit_enabled ROOTFS UNIT: whether UNIT starts at the box's boot. Read
# from the unit files (SYSTEMD_OFFLINE): no systemd runs in the chroot, and
# `systemctl cat` there fails (no manager to ask) or says nothing.
box_unit_enabled() {
  [ "$(chroot "$1" env SYSTEMD_OFFLINE=1 systemctl is-enabled "$2" 2>/dev/null)" = enabled ]
}

vagrant_insecure_key() {
  local key
  key=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n1)
  [ -n "$key" ] || die "vagrant's insecure public key was not found" "install the vagrant package"
  echo "$key"
}
