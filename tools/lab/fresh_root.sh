# The fresh-machine check: do the lab's own install steps give a clean
# Debian 12 everything the lab and the tests use? Sourced by ./lab.
# shellcheck shell=bash
#
# This host may carry packages installed by hand or by earlier runs, so a
# green suite here proves nothing about a newcomer's machine. So, in a
# throwaway copy of a minimal Debian 12 root (debootstrap, cached):
#   1. run install_prereqs and install_test_prereqs, as ./lab test does;
#   2. build the box's salt wheels and the test virtualenv, as ./lab does,
#      and run the unit tests there (they start haproxy, vagrant, ./lab);
#   3. check there every command, file, Python module and Vagrant plugin that
#      tools/lab/host_requirements.py finds in the code.
# Anything missing fails ./lab test, naming it.

FRESH_ROOT_DIR=$LAB_CACHE/fresh-root

fresh_root_fingerprint() {
  # what the check installs and runs: the lab's scripts, the requirements, the unit tests
  {
    (cd "$LAB_REPO" && find tools/lab tests/unit -type f ! -name '*.pyc' | sort | xargs cat)
    cat "$LAB_REPO/requirements.txt" "$LAB_REPO/requirements-dev.txt" "$LAB_REPO/constraints.txt"
    "$HOST_PYTHON" "$LAB_REPO/tools/lab/host_requirements.py" list
  } | sha256sum | cut -c1-12
}

# A minimal Debian 12 root, once; packages come through the lab's apt proxy.
fresh_root_base() {
  local base=$FRESH_ROOT_DIR/base
  [ -f "$base/.complete" ] && return 0
  step "debootstrap a minimal Debian 12 root for the fresh-machine check (once, cached in $base)"
  rm -rf --one-file-system "$base"; mkdir -p "$base"
  debootstrap --variant=minbase bookworm "$base" http://127.0.0.1:3142/deb.debian.org/debian \
    >"$FRESH_ROOT_DIR/debootstrap.log" 2>&1 || die "debootstrap of the fresh root failed" "see $FRESH_ROOT_DIR/debootstrap.log"
  touch "$base/.complete"
}

# How this host reaches Debian's mirror and PyPI (resolver, proxies, pip's
# settings and the CA bundle they name) is the network's business, not a
# prerequisite: the root gets the same, and nothing else of the host.
fresh_root_network() {
  local root=$1 conf cert
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  for conf in /etc/pip.conf /etc/xdg/pip/*; do
    [ -f "$conf" ] && install -D -m 0644 "$conf" "$root$conf"
  done
  # Installing ca-certificates in the root rewrites its bundle: keep the
  # host's beside it, and point pip at that one (FRESH_ROOT_PIP_CERT).
  FRESH_ROOT_PIP_CERT=
  for cert in ${PIP_CERT:-} $(sed -n 's/^ *cert *= *//p' /etc/pip.conf /etc/xdg/pip/pip.conf 2>/dev/null); do
    if [ -f "$cert" ]; then
      install -D -m 0644 "$cert" "$root/etc/ssl/host-registry-ca.pem"
      FRESH_ROOT_PIP_CERT=PIP_CERT=/etc/ssl/host-registry-ca.pem
      break
    fi
  done
  return 0
}

fresh_root_cleanup() {
  local work=$FRESH_ROOT_DIR/work
  # LEMP_HA_KEEP_FRESH_ROOT=1 keeps it to look into a failure (chroot into it)
  [ "${LEMP_HA_KEEP_FRESH_ROOT:-}" = 1 ] && [ "${1:-}" != always ] && return 0
  local mounted
  # Every mount under it (proc, and what someone chrooting in added), deepest first.
  unmount_under "$work"
  mounted=$(mounts_under "$work")
  [ -z "$mounted" ] || die "fresh-machine check: still mounted under $work: $mounted" "umount them, then run again"
  rm -rf --one-file-system "$work"
}

# fresh_root_run ROOT FUNCTION...: run lab functions inside ROOT, on its
# copy of the repo, with nothing of this host's environment but its network
# settings.
fresh_root_run() {
  local root=$1; shift
  local -a pass_env
  mapfile -t pass_env < <(env | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' | grep -v '^PIP_CERT=' || true)
  [ -z "$FRESH_ROOT_PIP_CERT" ] || pass_env+=("$FRESH_ROOT_PIP_CERT")
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 LEMP_HA_CACHE=/var/cache/lemp-ha "${pass_env[@]}" /bin/bash -c '
      set -euo pipefail
      cd /repo
      for part in lib prereqs build-box venv; do source tools/lab/$part.sh; done
      run_unit_tests() { ensure_venv; "$LAB_VENV/bin/pytest" -p no:cacheprovider -q tests/unit; }
      for fn in "$@"; do "$fn"; done' fresh-root "$@"
}

# fresh_root_skips [force]: true when check_fresh_root will skip: these
# inputs passed before, and neither CI (CI=true) nor `force` asks again.
fresh_root_skips() {
  [ -f "$FRESH_ROOT_DIR/passed-$(fresh_root_fingerprint)" ] && [ "${CI:-}" != true ] && [ "${1:-}" != force ]
}

# check_fresh_root [force]: skipped when these inputs passed before, except
# under CI (CI=true) or with `force`. When it runs, its unit tests are the
# suite's (./lab test then leaves tests/unit out of the fast tests).
# Copies the code as a newcomer has it into $1. In a git checkout that is the
# files git knows (tracked, or new and not ignored), so nothing `./lab up`
# writes meanwhile is read: stop 23's CI failed with tar's "file changed as we
# read it" when Vagrant created .vagrant/ during the copy. A tracked file
# deleted in the work tree is skipped (--ignore-failed-read).
repo_snapshot() {
  local dest=$1
  if git -C "$LAB_REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$LAB_REPO" ls-files -z --cached --others --exclude-standard \
      | tar -C "$LAB_REPO" --null --ignore-failed-read -T - -cf - | tar -C "$dest" -xf -
  else
    tar -C "$LAB_REPO" --exclude=./.git --exclude=./.vagrant -cf - . | tar -C "$dest" -xf -
  fi
}

check_fresh_root() {
  local fp marker work rc=0
  fp=$(fresh_root_fingerprint)
  marker=$FRESH_ROOT_DIR/passed-$fp
  if fresh_root_skips "${1:-}"; then
    info "fresh-machine check: passed before for these prerequisites ($fp)"
    return 0
  fi
  mkdir -p "$FRESH_ROOT_DIR"
  # The apt proxy, on the bridge too: the lab's machines use the same one.
  bridge_up
  apt_proxy_up
  fresh_root_base
  work=$FRESH_ROOT_DIR/work
  fresh_root_cleanup always
  step "fresh-machine check: installing the prerequisites into a clean Debian 12 root"
  cp -a "$FRESH_ROOT_DIR/base" "$work"
  mount -t proc proc "$work/proc"
  fresh_root_network "$work"
  # The code as a newcomer has it, without Vagrant's state.
  mkdir -p "$work/repo"
  repo_snapshot "$work/repo"
  fresh_root_run "$work" install_prereqs install_test_prereqs build_wheels ensure_venv \
    >"$FRESH_ROOT_DIR/install.log" 2>&1 || rc=$?
  if [ $rc != 0 ]; then
    cat "$work"/var/cache/lemp-ha/*.log >>"$FRESH_ROOT_DIR/install.log" 2>/dev/null || true
    tail -n 20 "$FRESH_ROOT_DIR/install.log" >&2
    fresh_root_cleanup
    die "fresh-machine check: the install steps failed on a clean Debian 12 root" "see $FRESH_ROOT_DIR/install.log"
  fi
  local missing=0 tests=0
  "$HOST_PYTHON" "$LAB_REPO/tools/lab/host_requirements.py" check "$work" >&2 || missing=1
  # The unit tests start host programs (haproxy, vagrant and its plugins, ./lab).
  step "fresh-machine check: the unit tests on that root"
  fresh_root_run "$work" run_unit_tests >"$FRESH_ROOT_DIR/unit-tests.log" 2>&1 || tests=1
  tail -n 1 "$FRESH_ROOT_DIR/unit-tests.log" >&2
  [ $tests = 0 ] || grep -E '^(FAILED|ERROR) ' "$FRESH_ROOT_DIR/unit-tests.log" >&2 || true
  fresh_root_cleanup
  [ $missing = 0 ] \
    || die "fresh-machine check: a clean Debian 12 with the prerequisites lacks what the lab or the tests use (above)" \
      "add its package to LAB_HOST_PACKAGES or TEST_HOST_PACKAGES in tools/lab/prereqs.sh"
  # A failing unit test is a fault in the code or in the prerequisites: the
  # log says which (a missing program or module, or an assertion).
  [ $tests = 0 ] \
    || die "fresh-machine check: unit tests failed on a clean Debian 12 root (FAILED above; $FRESH_ROOT_DIR/unit-tests.log)" \
      "a missing program or module: add its package to tools/lab/prereqs.sh; otherwise fix the code or the test"
  rm -f "$FRESH_ROOT_DIR"/passed-*
  touch "$marker"
  info "fresh-machine check passed: the prerequisites give a clean Debian 12 all the lab and the tests use"
}
