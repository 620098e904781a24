"""Load-balancer faults of issue #14, on the lab: correctness only (the
figures are the bench's).

* A VRRP split brain (the LBs stop hearing each other) heals to exactly one
  VIP holder, and the site answers through the VIP.
* An LB failover keeps the database writer and the Redis master in use: the
  LBs share the endpoints' stick tables (HAProxy's peers section), so the LB
  taking the VIPs routes to the servers the other chose.

The failover here is the planned one (keepalived stopped on the holder, as
orch.patch does): a few seconds, no reboot. tests/lab/test_web_lb.py stops
the holder's machine, checks the writer there too, and its failback.

Needs the lab up. Fixtures: tests/lab/conftest.py; helpers:
tests/lab/web_helpers.py. Every change is undone in `finally`, and each
test ends with one VIP holder and the app answering.
"""

import pytest

from lemplab import wait_for
from web_helpers import (
    keepalived_check_passed,
    lb_names,
    new_session,
    stick_servers,
    vip_holders,
    wait_app_answers,
    wait_single_vip_holder,
    wait_webs_up_on_all_lbs,
)

# A table of its own, so that removing it leaves the firewall (table
# inet lemp_ha, salt/firewall) as it was; its chain runs before the
# firewall's (a lower priority), and a drop anywhere drops the packet.
CUT_TABLE = "lemp_ha_test_vrrp_cut"


@pytest.fixture(autouse=True)
def lab_is_whole(lab):
    wait_single_vip_holder(lab, timeout=60)
    wait_app_answers(lab)
    wait_webs_up_on_all_lbs(lab)  # every web node, one salt call a poll


def cut_vrrp(peer_address):
    """nft commands dropping the VRRP adverts (IP protocol 112) from the
    other LB: the link between them is cut for VRRP only."""
    return (f"nft add table inet {CUT_TABLE} && "
            f"nft add chain inet {CUT_TABLE} input '{{ type filter hook input priority -10; policy accept; }}' && "
            f"nft add rule inet {CUT_TABLE} input ip saddr {peer_address} ip protocol 112 drop")


def heal_vrrp():
    return f"nft delete table inet {CUT_TABLE} 2>/dev/null; ! nft list table inet {CUT_TABLE} >/dev/null 2>&1"


def test_a_vrrp_split_brain_heals_to_one_holder_and_the_site_answers(lab):
    lbs = lb_names(lab)
    assert len(lbs) == 2, lbs
    address = {lb: lab.machines[lb]["address"] for lb in lbs}
    try:
        for lb in lbs:
            other = next(name for name in lbs if name != lb)
            lab.run(lb, cut_vrrp(address[other]))
        # each LB misses the other's adverts (advert_int 0.1 s): both take the VIPs
        wait_for(lambda: sorted(vip_holders(lab)) == sorted(lbs), 20, "both LBs to hold the VIP (split brain)",
                 interval=0.2)
    finally:
        for lb in lbs:
            lab.run(lb, heal_vrrp(), check=False)
    for lb in lbs:
        assert lab.run(lb, f"nft list table inet {CUT_TABLE}", check=False).returncode != 0, f"cut left on {lb}"
    # the adverts pass again: the lower priority gives the VIPs up within a few adverts
    holder = wait_single_vip_holder(lab, timeout=10)
    assert f" {lab.internal_vip}/" in lab.run(holder, "ip -4 -o addr show").stdout, "the VIPs are split"
    # the neighbours learn where the VIP is (gratuitous ARP, garp_master_refresh at the latest)
    wait_app_answers(lab, timeout=20)
    assert vip_holders(lab) == [holder]


def test_an_lb_failover_keeps_the_database_writer_and_the_redis_master(lab):
    holder = wait_single_vip_holder(lab)
    other = next(lb for lb in lb_names(lab) if lb != holder)
    # a database request and a session through the VIP: both tables have an entry
    session = new_session(lab)
    created = session.post(f"https://{lab.vip}/api/items", json={"note": "before-lb-failover"}, timeout=5)
    assert created.status_code == 201, created.text
    assert session.get(f"https://{lab.vip}/api/info", timeout=5).json()["session_ok"] is True

    def shared(table):
        def same():
            seen = stick_servers(lab, [holder, other], table)
            return seen[holder] if seen[holder] and seen[holder] == seen[other] else None
        return same

    writer = wait_for(shared("galera"), 30, "both LBs to route to one database writer (peers)")
    redis = wait_for(shared("redis-sessions"), 30, "both LBs to route to one Redis master (peers)")
    try:
        lab.run(holder, "systemctl mask --runtime keepalived && systemctl stop keepalived")
        assert wait_single_vip_holder(lab, timeout=20, not_on=holder) == other
        wait_app_answers(lab, timeout=20)
        # A connection kept alive through the old holder ends with it (the
        # new holder never saw it): the client connects again, its cookie
        # and so its session kept.
        session.close()
        created = session.post(f"https://{lab.vip}/api/items", json={"note": "after-lb-failover"}, timeout=5)
        assert created.status_code == 201, created.text
        info = session.get(f"https://{lab.vip}/api/info", timeout=5).json()
        assert info["session_ok"] is True, info
        # the new holder sent them where the old one did
        assert stick_servers(lab, [other], "galera") == {other: writer}, "the LB failover moved the writer"
        assert stick_servers(lab, [other], "redis-sessions") == {other: redis}, "it moved the Redis master"
    finally:
        lab.run(holder, "systemctl unmask --runtime keepalived; systemctl start keepalived", check=False)
    # the old holder is back in the VRRP group, ready, and (nopreempt) takes nothing back
    wait_for(lambda: keepalived_check_passed(lab, holder), 30, f"keepalived on {holder} back with its check passed")
    assert wait_single_vip_holder(lab, timeout=10) == other
    wait_app_answers(lab)
