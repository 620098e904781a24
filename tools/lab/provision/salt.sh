#!/bin/bash
# Vagrant provisioner: make this machine a Salt minion of the lab master (and
# the master itself on the master machine). Everything else is Salt's job.
# Safe to re-run: it rewrites the same files and restarts only on change.
set -euo pipefail
: "${LEMP_HA_ID:?} ${LEMP_HA_ROLES:?} ${LEMP_HA_MASTER:?} ${LEMP_HA_AUTOSIGN_KEY:?} ${LEMP_HA_SALT_REQUIREMENTS:?}"
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
  put /etc/salt/master.d/00-lemp-ha-bootstrap.conf 0644 <<CONF
# Written by lab/provision/salt.sh. Other master settings are Salt-managed.
file_roots:
  base:
    - /srv/lemp-ha/salt
    - /srv/lemp-ha-extras
pillar_roots:
  base:
    - /srv/lemp-ha/pillar
    - /srv/lemp-ha-secrets
# Orchestrations call the runners (_runners/) and modules (_modules/, and
# _states/) of the checkout when they are rendered, before any sync step:
# runner_dirs loads runners from a folder; module_dirs loads each kind from
# <folder>/_<kind> (so the extras folder, not _modules itself).
runner_dirs:
  - /srv/lemp-ha/_runners
module_dirs:
  - /srv/lemp-ha-extras
# The master's id names its key pair (Salt 3008: pki/<id>.pem). Left to
# Salt it is the FQDN, which changes once orch.site writes /etc/hosts, and a
# restarted master would then make a new key that every minion refuses.
id: ${LEMP_HA_ID}
# New minions are accepted only when they present the lab's enrolment secret.
autosign_grains_dir: /etc/salt/autosign_grains
enable_fqdns_grains: False
worker_threads: 4
CONF
  put /etc/salt/autosign_grains/lemp_ha_enrol 0600 <<<"$LEMP_HA_AUTOSIGN_KEY"
  chmod 0700 /etc/salt/autosign_grains
  systemctl enable -q salt-master
  if [[ " ${changed[*]} " == *" /etc/salt/master.d/"* || " ${changed[*]} " == *autosign* ]] || ! systemctl is-active -q salt-master; then
    systemctl restart salt-master
  fi
fi

put /etc/salt/minion.d/00-lemp-ha-bootstrap.conf 0644 <<CONF
# Written by lab/provision/salt.sh.
id: ${LEMP_HA_ID}
master: ${LEMP_HA_MASTER}
# No DNS in the lab: never wait on reverse look-ups.
enable_fqdns_grains: False
autosign_grains:
  - lemp_ha_enrol
acceptance_wait_time: 2
acceptance_wait_time_max: 10
random_reauth_delay: 0
CONF
put /etc/salt/grains 0600 <<CONF
lemp_ha_enrol: ${LEMP_HA_AUTOSIGN_KEY}
CONF
systemctl enable -q salt-minion
if [ ${#changed[@]} -gt 0 ] || ! systemctl is-active -q salt-minion; then
  systemctl restart salt-minion
fi
echo "salt minion ${LEMP_HA_ID} -> master ${LEMP_HA_MASTER} (changed: ${changed[*]:-nothing})"
