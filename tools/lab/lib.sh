# Shared helpers for the lab scripts. Sourced, never run.
# shellcheck shell=bash

LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_CACHE=${LEMP_HA_CACHE:-/var/cache/lemp-ha}   # box, wheels, venv: rebuilt when missing
LAB_STATE=${LEMP_HA_STATE:-/var/lib/lemp-ha}     # lab secrets and CA: never in the repo
LAB_TOPOLOGY=${LEMP_HA_TOPOLOGY:-$LAB_REPO/pillar/topology.yaml}
SALT_VERSION=3008.4
BOX_NAME=lemp-ha/debian12
export VAGRANT_CWD=$LAB_REPO VAGRANT_DEFAULT_PROVIDER=lxc VAGRANT_CHECKPOINT_DISABLE=1

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
die() {
  printf '\033[31mERROR: %s\033[0m\n' "$1" >&2
  [ -n "${2:-}" ] && printf '  fix: %s\n' "$2" >&2
  exit 1
}

# mounts_under DIR: the mount points below DIR, deepest first.
mounts_under() { awk -v w="$1/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r; }

# unmount_under DIR: unmount (lazily) everything mounted below DIR, deepest
# first: a chroot's /proc left by a build that was killed.
unmount_under() { mounts_under "$1" | xargs -r -n1 umount -l; }

need_root() {
  [ "$(id -u)" = 0 ] || die "the lab must be run as root (it creates a bridge and LXC containers)" \
    "run it again with sudo, or as root"
}

# The host's own Python (the one with python3-yaml), not whatever is first on PATH.
HOST_PYTHON=/usr/bin/python3

# The topology, validated once per command; a bad one stops us before anything is touched.
load_topology() {
  LAB_TOPO_JSON=$("$HOST_PYTHON" "$LAB_REPO/_modules/lemp_topology.py" json "$LAB_TOPOLOGY" 2>&1) \
    || die "$LAB_TOPO_JSON" "edit $LAB_TOPOLOGY"
}

# lemplab ARGS: the lab driver's command line (tools/lab/lemplab.py), on the
# topology load_topology validated.
lemplab() {
  "$HOST_PYTHON" "$LAB_REPO/tools/lab/lemplab.py" --topology-json "$LAB_TOPO_JSON" "$@"
}

# topo_get EXPR: evaluate a Python expression over the topology `t`.
topo_get() { lemplab topo "$1"; }

lab_bridge() { topo_get "t['network']['bridge']"; }
lab_host_addr() { topo_get "t['network']['host']"; }
lab_prefixlen() { topo_get "t['network']['prefixlen']"; }
lab_machines() { topo_get "list(t['machines'])"; }
lab_master() { topo_get "t['master']"; }
lab_address() { topo_get "t['machines']['$1']['address']"; }

# Lab addresses are routed out of this machine while the lab is down: never
# send anything to one unless the kernel would send it over the lab bridge.
require_lab_route() {
  local why
  why=$(lemplab require-route "$1" 2>&1) || die "${why:-lab not up: no route check for $1}" "run ./lab up"
}

# lab_exec MACHINE CMD...: run as root inside a lab container (no network
# involved: lxc-attach enters the container directly).
lab_exec() {
  local name=$1; shift
  lxc-attach -n "lemp-ha-$name" --clear-env \
    --set-var PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --set-var LANG=C.UTF-8 -- "$@"
}
