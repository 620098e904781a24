"""The host firewall (salt/firewall, pillar/ports.yaml, issue #13 item 1).

From a lab address of each role, every TCP port of the port matrix is tried on
every other machine, on the VIP and on the internal VIP (the database and
Redis endpoints): only the ones the matrix admits answer.
"Answers" means the connection is accepted or refused (a RST: admitted, nothing
listening, e.g. Galera's SST port between transfers); a port the firewall drops
gives no answer at all, so the probe times out. UDP (Galera's 4567) and VRRP
are proven by what depends on them: one LB holds the VIP, the Gluster bricks
are online, every minion answers.

The probes run inside each machine (lxc-attach, bash's /dev/tcp, in parallel),
and from the lab host (the admin network) over the bridge.
"""

import pathlib
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

import lemp_firewall

REPO = pathlib.Path(__file__).resolve().parents[2]
PROBE_TIMEOUT = 3  # seconds: a dropped SYN is retried after 1 s, then 3 s
# A port no role serves: the default policy must drop it.
NEVER_OPEN = 9


@pytest.fixture(scope="module")
def services(topology):
    return lemp_firewall.check_services(yaml.safe_load((REPO / "pillar" / "ports.yaml").read_text()), topology)


@pytest.fixture(scope="module")
def firewall_loaded(lab):
    """The firewall is up on every machine, else nothing here means anything."""
    for name in lab.machines:
        proc = lab.run(name, "nft list table inet lemp_ha", check=False)
        assert proc.returncode == 0, f"{name}: table inet lemp_ha is not loaded ({proc.stderr.strip()}): " \
                                     "apply the highstate (orch.site)"
    return True


def tcp_ports(services):
    """Every TCP port spec of the matrix (a range stays one spec, probed at both
    ends), SSH, and a port nobody serves."""
    specs = {"22", str(NEVER_OPEN)}
    for declared in services.values():
        for spec in declared.values():
            if spec["proto"] in ("tcp", "tcp+udp"):
                specs.update(spec["ports"])
    return sorted(specs)


def probe_ports(spec):
    low, _, high = spec.partition("-")
    return [int(low), int(high)] if high else [int(low)]


def vips(topology):
    """The addresses the LB holding the VIP carries: the public VIP (80/443)
    and the internal VIP (the database and Redis endpoints)."""
    return [topology["network"]["vip"], topology["network"]["internal_vip"]]


def targets(topology):
    return [m["address"] for m in topology["machines"].values()] + vips(topology)


def probe_script(probes):
    """bash: try every (address, port) at once; print `ADDRESS PORT RC` each.
    RC 0 connected, 1 refused (both answers), 124 no answer (dropped)."""
    lines = [f"( timeout {PROBE_TIMEOUT} bash -c 'exec 3<>/dev/tcp/{a}/{p}' 2>/dev/null; echo \"{a} {p} $?\" ) &"
             for a, p in probes]
    return "\n".join(lines + ["wait"])


def parse_probes(text):
    return {(a, int(p)): rc != "124" for a, p, rc in (line.split() for line in text.splitlines() if line.strip())}


def expected(pairs, client, address, spec):
    return any((client, address, proto, spec) in pairs for proto in ("tcp", "tcp+udp"))


def test_from_every_machine_only_the_ports_the_matrix_admits_answer(lab, topology, services, firewall_loaded):
    pairs = lemp_firewall.allowed_pairs(topology, services)
    lbs = set(lab.with_role("lb"))

    def probe_from(client):
        machine = topology["machines"][client]
        plan = {}
        for address in targets(topology):
            # Its own address, and the VIPs on an LB (it may hold them), go over loopback.
            if address == machine["address"] or (address in vips(topology) and client in lbs):
                continue
            for spec in tcp_ports(services):
                for port in probe_ports(spec):
                    plan[(address, port)] = expected(pairs, client, address, spec)
        out = lab.run(client, probe_script(sorted(plan)), timeout=120).stdout
        answered = parse_probes(out)
        assert set(answered) == set(plan), f"{client}: probes missing from the output:\n{out[-2000:]}"
        return [f"{client} -> {a}:{p}: {'answered' if answered[(a, p)] else 'no answer'}, "
                f"matrix says {'allowed' if allow else 'dropped'}"
                for (a, p), allow in sorted(plan.items()) if answered[(a, p)] != allow]

    # three clients at a time: each waits out its dropped probes (PROBE_TIMEOUT)
    with ThreadPoolExecutor(max_workers=3) as pool:
        wrong = [line for lines in pool.map(probe_from, topology["machines"]) for line in lines]
    assert not wrong, "\n".join(wrong)


def host_answers(address, port):
    try:
        with socket.create_connection((address, port), timeout=PROBE_TIMEOUT):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def test_from_the_lab_host_only_https_and_the_admin_services_answer(lab, topology, services, firewall_loaded):
    host = topology["network"]["host"]
    plan = {}
    for name in topology["machines"]:
        for rule in lemp_firewall.machine_rules(topology, services, name)["rules"]:
            if rule["proto"] not in ("tcp", "tcp+udp"):
                continue
            address = rule["daddr"]
            allow = rule["sources"] is None or lemp_firewall.admits(rule["sources"], host)
            for spec in rule["ports"]:
                for port in probe_ports(spec):
                    plan[(address, port)] = plan.get((address, port), False) or allow
        plan[(topology["machines"][name]["address"], 22)] = True
        plan[(topology["machines"][name]["address"], NEVER_OPEN)] = False
    # Every port of the matrix on both VIPs: what no rule places there is
    # dropped, SSH and the stats pages included (they are on the LB's own
    # address only).
    for address in vips(topology):
        for spec in tcp_ports(services):
            for port in probe_ports(spec):
                plan.setdefault((address, port), False)
    # The issue's own case: the database and Redis endpoints are not on the VIP,
    # and on the internal VIP they do not answer the host (not one of their clients).
    vip, internal = vips(topology)
    assert plan[(vip, 3306)] is False and plan[(vip, 6379)] is False and plan[(vip, 443)] is True
    assert plan[(internal, 3306)] is False and plan[(internal, 6379)] is False and plan[(internal, 443)] is False
    assert {p for (a, p), allow in plan.items() if a == vip and allow} == {80, 443}
    with ThreadPoolExecutor(max_workers=64) as pool:
        answered = dict(zip(plan, pool.map(lambda ap: host_answers(*ap), plan)))
    wrong = [f"host -> {a}:{p}: {'answered' if answered[(a, p)] else 'no answer'}, "
             f"matrix says {'allowed' if allow else 'dropped'}"
             for (a, p), allow in sorted(plan.items()) if answered[(a, p)] != allow]
    assert not wrong, "\n".join(wrong)


def test_vrrp_passes_the_firewall_so_exactly_one_lb_holds_both_vips(lab, topology, firewall_loaded):
    # Dropped adverts would make both LBs MASTER: the VIP on both. The internal
    # VIP moves with it (one VRRP instance): the same LB holds both.
    holders = {}
    for name in lab.with_role("lb"):
        addresses = lab.run(name, "ip -4 -o addr show").stdout
        holders[name] = [a for a in vips(topology) if f" {a}/" in addresses]
    holding = {name: held for name, held in holders.items() if held}
    assert len(holding) == 1 and list(holding.values()) == [vips(topology)], holders


def test_the_web_nodes_reach_the_database_and_redis_through_the_internal_vip(lab, topology, firewall_loaded):
    # what the app, PHP's sessions and the cron lock use; the public VIP no longer serves them
    internal, vip = topology["network"]["internal_vip"], topology["network"]["vip"]
    web = lab.with_role("web")[0]
    out = lab.run(web, probe_script([(internal, 3306), (internal, 6379), (vip, 3306), (vip, 6379)])).stdout
    answered = parse_probes(out)
    assert answered == {(internal, 3306): True, (internal, 6379): True, (vip, 3306): False, (vip, 6379): False}, out


def test_the_gluster_bricks_are_online_through_the_firewall(lab, topology, firewall_loaded):
    first = lab.with_role("web")[0]
    status = lab.run(first, "gluster volume status uploads detail | grep -E '^(Brick|Online)'").stdout
    online = [line.split(":")[-1].strip() for line in status.splitlines() if line.startswith("Online")]
    assert online and all(state == "Y" for state in online), status


def test_every_minion_still_answers_the_master_through_the_firewall(lab, firewall_loaded):
    answers = lab.salt("--timeout=10", "*", "test.ping")
    assert {name: answers.get(name) for name in lab.machines} == {name: True for name in lab.machines}, answers


def test_a_second_highstate_changes_no_firewall_state(lab, firewall_loaded):
    name = lab.with_role("web")[0]
    ret = lab.salt(name, "state.sls", "firewall")
    states = ret.get(name) or {}
    assert isinstance(states, dict) and states, ret
    changed = {sid: st.get("changes") for sid, st in states.items() if st.get("changes")}
    failed = {sid: st.get("comment") for sid, st in states.items() if not st.get("result")}
    assert not failed, failed
    assert not changed, changed
