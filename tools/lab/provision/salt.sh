#!/bin/bash
# Vagrant provisioner: make this machine a Salt minion of the lab master (and
# the master itself on the master machine), enough to reach orch.site.
# Everything else is Salt's job: the master's own configuration is the state
# salt/master (applied by orch.site), which replaces the bootstrap file below.
# Keys are never accepted on a shared secret: ./lab up pre-accepts each
# fixed machine's own public key on the master (read through lxc-attach), a
# pool machine (LEMP_HA_POOL=1) gets a key minted for its name by the master
# (Vagrantfile trigger, runner lemp_enrol.mint) before its minion starts.
# Safe to re-run: it rewrites the same files and restarts only on change.
set -euo pipefail
: "${LEMP_HA_ID:?} ${LEMP_HA_ROLES:?} ${LEMP_HA_MASTER:?} ${LEMP_HA_SALT_REQUIREMENTS:?}"
LEMP_HA_POOL=${LEMP_HA_POOL:-0}
# The fingerprint of the master's key, made on the lab host before any
# minion (tools/lab/lab_secrets.py): pinned below as master_finger.
LEMP_HA_MASTER_FINGER=${LEMP_HA_MASTER_FINGER:-}
export DEBIAN_FRONTEND=noninteractive

changed=()
# put FILE MODE: write stdin to FILE when it differs, remember the change.
put() {
  local file=$1 mode=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if ! cmp -s "$tmp" "$file" 2>/dev/null; then
    install -D -m "$mode" "$tmp" "$file"
    changed+=("$file")
  fi
  rm -f "$tmp"
}

put /etc/hostname 0644 <<<"$LEMP_HA_ID"
[ "$(hostname)" = "$LEMP_HA_ID" ] || hostname "$LEMP_HA_ID"

# A lab machine without a default route reaches Debian only through the
# host's apt proxy; a laptop VM with a route does not need it.
if ! [ -n "$(ip route show default)" ]; then
  put /etc/apt/apt.conf.d/01lemp-ha-proxy 0644 <<CONF
// The lab's only way out: the apt proxy on the host's lab-bridge address.
Acquire::http::Proxy "${LEMP_HA_APT_PROXY}";
Acquire::Retries "3";
CONF
fi
put /etc/apt/apt.conf.d/02lemp-ha-no-recommends 0644 <<'CONF'
APT::Install-Recommends "false";
CONF

if [ ! -x /opt/salt/bin/salt-minion ]; then
  # Boxes other than the lab's own (virtualbox, libvirt) have no salt yet.
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv /opt/salt
  printf '%s\n' "$LEMP_HA_SALT_REQUIREMENTS" >/tmp/salt-requirements.txt
  /opt/salt/bin/pip install -q -r /tmp/salt-requirements.txt
  for tool in salt salt-call salt-key salt-master salt-minion salt-run salt-cp; do
    ln -sf /opt/salt/bin/$tool /usr/bin/$tool
  done
fi

if [[ ",$LEMP_HA_ROLES," == *,master,* ]]; then
  # States and orchestrations come from the checkout shared at /srv/lemp-ha;
  # only the folders minions need are exposed (never pillar/ or tests/).
  install -d /srv/lemp-ha-extras
  for dir in orch reactor _modules _states app; do
    ln -sfn /srv/lemp-ha/$dir /srv/lemp-ha-extras/$dir
  done
  install -d -m 0700 /srv/lemp-ha-secrets
  # Once salt/master has written its own file, the bootstrap is not needed
  # (the state removes it; a re-provision must not bring it back).
  if [ ! -e /etc/salt/master.d/50-lemp-ha.conf ]; then
    put /etc/salt/master.d/00-lemp-ha-bootstrap.conf 0644 <<CONF
# Written by tools/lab/provision/salt.sh: just enough for orch.site, whose
# state salt/master writes 50-lemp-ha.conf and removes this file.
file_roots:
  base:
    - /srv/lemp-ha/salt
    - /srv/lemp-ha-extras
pillar_roots:
  base:
    - /srv/lemp-ha/pillar
    - /srv/lemp-ha-secrets
# Orchestrations call the runners and modules of the checkout when they are
# rendered, before any sync step.
runner_dirs:
  - /srv/lemp-ha/_runners
module_dirs:
  - /srv/lemp-ha-extras
# The master's id names its key pair (Salt 3008: pki/<id>.pem); left to Salt
# it is the FQDN, which changes once orch.site writes /etc/hosts.
id: ${LEMP_HA_ID}
enable_fqdns_grains: False
worker_threads: 4
CONF
  fi
  # A lab made before pre-seeded keys: its shared enrolment secret goes.
  if [ -e /etc/salt/autosign_grains ]; then rm -rf /etc/salt/autosign_grains; changed+=(/etc/salt/autosign_grains); fi
  if [ -n "$LEMP_HA_MASTER_FINGER" ] && ! [ -e /etc/salt/pki/master/master.pem ] \
     && ! [ -e "/etc/salt/pki/master/${LEMP_HA_ID}.pem" ]; then
    # A master started now would make a key of its own, which every minion
    # refuses (they pin the lab's): ./lab up installs the pre-generated pair
    # through lxc-attach, then starts it (install_master_key, cmd_up.sh).
    echo "salt master ${LEMP_HA_ID}: configured, waiting for the lab's master key before it starts"
  else
    systemctl enable -q salt-master
    if [[ " ${changed[*]} " == *" /etc/salt/master.d/"* || " ${changed[*]} " == *autosign* ]] || ! systemctl is-active -q salt-master; then
      systemctl restart salt-master
    fi
  fi
fi

# The minion refuses a master whose key does not have this fingerprint
# (sha256 of the key's PEM body, as the minion computes it: see
# _modules/lemp_master.py master_finger).
if [ -n "$LEMP_HA_MASTER_FINGER" ]; then
  pin="master_finger: '${LEMP_HA_MASTER_FINGER}'
hash_type: sha256"
else
  echo "WARNING: no master fingerprint given (LEMP_HA_MASTER_FINGER): this minion trusts the first master key it sees; ./lab up pins it" >&2
  pin="# master_finger: none given (the lab's secrets were not readable): first master key trusted"
fi

put /etc/salt/minion.d/00-lemp-ha-bootstrap.conf 0644 <<CONF
# Written by tools/lab/provision/salt.sh.
id: ${LEMP_HA_ID}
master: ${LEMP_HA_MASTER}
${pin}
# No DNS in the lab: never wait on reverse look-ups.
enable_fqdns_grains: False
acceptance_wait_time: 2
acceptance_wait_time_max: 10
random_reauth_delay: 0
CONF
# The shared enrolment grain of labs made before pre-seeded keys.
if [ -e /etc/salt/grains ] && grep -q '^lemp_ha_enrol:' /etc/salt/grains; then
  sed -i '/^lemp_ha_enrol:/d' /etc/salt/grains
  changed+=(/etc/salt/grains)
fi
systemctl enable -q salt-minion
if [ "$LEMP_HA_POOL" = 1 ] && [ ! -s /etc/salt/pki/minion/minion.pem ]; then
  # Started by the Vagrantfile's trigger once the key minted for this name
  # is installed: a minion started now would make its own key, which the
  # master refuses (the name's slot holds the minted one).
  echo "salt minion ${LEMP_HA_ID} (pool): configured, waiting for its minted key before it starts"
  exit 0
fi
if [ ${#changed[@]} -gt 0 ] || ! systemctl is-active -q salt-minion; then
  systemctl restart salt-minion
fi
echo "salt minion ${LEMP_HA_ID} -> master ${LEMP_HA_MASTER} (changed: ${changed[*]:-nothing})"
