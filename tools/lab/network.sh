# The lab bridge and the apt proxy on it. Sourced by ./lab.
# shellcheck shell=bash

ACNG_PIDFILE=/run/lemp-ha-apt-cacher-ng.pid

bridge_up() {
  local bridge host prefix
  bridge=$(lab_bridge); host=$(lab_host_addr); prefix=$(lab_prefixlen)
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    # Refuse to shadow a network this machine already uses.
    local owner
    owner=$(ip -o addr show to "$host/$prefix" | awk '{print $2}' | head -n1)
    [ -z "$owner" ] || die "the lab subnet is already in use on this host by interface $owner" \
      "free it, or change network.subnet in pillar/topology.yaml"
    step "creating the lab bridge $bridge ($host/$prefix)"
    ip link add "$bridge" type bridge
  fi
  [[ " $(ip -o addr show dev "$bridge") " == *" $host/$prefix "* ]] || ip addr add "$host/$prefix" dev "$bridge"
  ip link set "$bridge" up
  # The VMs get no gateway; make sure nothing forwards their traffic anyway.
  if command -v iptables >/dev/null; then
    iptables -C FORWARD -i "$bridge" ! -o "$bridge" -j DROP 2>/dev/null \
      || iptables -I FORWARD -i "$bridge" ! -o "$bridge" -j DROP
  fi
}

bridge_down() {
  local bridge
  bridge=$(lab_bridge)
  if command -v iptables >/dev/null; then
    while iptables -D FORWARD -i "$bridge" ! -o "$bridge" -j DROP 2>/dev/null; do :; done
  fi
  if ip link show "$bridge" >/dev/null 2>&1; then
    step "removing the lab bridge $bridge"
    ip link set "$bridge" down
    ip link del "$bridge"
  fi
}

# apt-cacher-ng on loopback and the bridge: the VMs' only way to Debian's
# mirror. Its cache (/var/cache/apt-cacher-ng) outlives the lab. Debian's
# archive is fetched from deb.debian.org, the one mirror name this host may
# resolve (the package default, ftp.debian.org, may not).
apt_proxy_up() {
  local host
  host=$(lab_host_addr)
  if [ -f "$ACNG_PIDFILE" ] && kill -0 "$(cat "$ACNG_PIDFILE")" 2>/dev/null; then
    # Started before the bridge existed, it listens on loopback only: the
    # machines could not reach it. Start it again on both addresses.
    if ! ip -o addr show to "$host" | grep -q . \
        || curl -fsS -o /dev/null --max-time 2 "http://$host:3142/acng-report.html" 2>/dev/null; then
      return 0
    fi
    info "the apt proxy does not answer on $host: starting it again"
    apt_proxy_down
  fi
  command -v apt-cacher-ng >/dev/null || die "apt-cacher-ng is not installed" "run ./lab up (it installs the host prerequisites)"
  # Debian's own apt-cacher-ng service, if it runs, holds the port.
  ss -Hltn 'sport = :3142' | grep -q . && die "port 3142 is taken by another program (Debian's apt-cacher-ng service?)" \
    "stop it: systemctl disable --now apt-cacher-ng; then ./lab up"
  step "starting the apt proxy on $host:3142"
  mkdir -p /var/cache/apt-cacher-ng /var/log/apt-cacher-ng /run/apt-cacher-ng
  chown apt-cacher-ng: /var/cache/apt-cacher-ng /var/log/apt-cacher-ng /run/apt-cacher-ng 2>/dev/null || true
  /usr/sbin/apt-cacher-ng -c /etc/apt-cacher-ng \
    "BindAddress=127.0.0.1 $host" Port=3142 "pidfile=$ACNG_PIDFILE" \
    "Remap-debrep=file:deb_mirror*.gz /debian ; http://deb.debian.org/debian/" \
    SocketPath=/run/apt-cacher-ng/socket ForeGround=0 \
    || die "apt-cacher-ng did not start" "see /var/log/apt-cacher-ng/apt-cacher.err"
  local i
  for i in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:3142/acng-report.html" 2>/dev/null && return 0
    sleep 0.2
  done
  die "apt-cacher-ng is not answering on 127.0.0.1:3142" "see /var/log/apt-cacher-ng/apt-cacher.err"
}

apt_proxy_down() {
  if [ -f "$ACNG_PIDFILE" ]; then
    local pid i
    pid=$(cat "$ACNG_PIDFILE")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
      sleep 0.1
    done
    rm -f "$ACNG_PIDFILE"
  fi
}
