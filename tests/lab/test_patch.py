"""orch.patch on the lab (issue #13 item 7): security updates for the load
balancers and the web nodes, one node at a time, under steady HTTPS load
through the VIP. The lab may have nothing to upgrade: pillar restart
`always` makes every node go through the whole runbook anyway (out of
service, upgrade, restart its services, back in service), so the test
proves the sequence, not the package archive's state of the day.

LBs and web nodes only (the data tier's rules are those of
orch.galera_rolling_restart, tested there), no maintenance window (mon1
is not touched): about a minute."""

import pytest

from web_helpers import (
    LoadLoop,
    haproxy_states_of,
    lb_names,
    vip_holders,
    wait_app_answers,
    wait_single_vip_holder,
    wait_webs_up_on_all_lbs,
    web_names,
)

PATCH = {"tiers": ["lb", "web"], "restart": "always", "maintenance": False}


def main_pids(lab):
    """{(machine, service): MainPID} of the services restart `always` restarts."""
    pids = {}
    for machine, unit in [(lb, "haproxy") for lb in lb_names(lab)] + [
            (web, svc) for web in web_names(lab) for svc in ("nginx", "php8.2-fpm")]:
        out = lab.run(machine, f"systemctl show -p MainPID --value {unit}").stdout.strip()
        assert out not in ("", "0"), f"{unit} is not running on {machine}"
        pids[(machine, unit)] = out
    return pids


@pytest.fixture(autouse=True)
def lab_is_whole(lab):
    wait_single_vip_holder(lab, timeout=60)
    wait_app_answers(lab)
    wait_webs_up_on_all_lbs(lab)  # every web node, one salt call a poll


def test_patching_the_lbs_and_web_nodes_fails_no_request_and_ends_with_every_node_in_service(lab):
    before = main_pids(lab)
    # The VIPs move at most twice (off each LB in turn while it is patched;
    # nopreempt: an LB that returns takes nothing back): each move resets
    # the one keep-alive connection the client had open on the LB giving
    # them up, which a browser retries (LoadLoop retry_dropped).
    with LoadLoop(lab, max_seconds=300, retry_dropped=True) as load:
        ok, detail = lab.orchestrate("orch.patch", PATCH)
        load.wait_for_requests(20)
    assert ok, detail
    for sid in ("move-the-vips-off-lb1-stop-its-keepalived", "wait-until-one-lb-holds-both-vips-after-lb2",
                "drain-web1-on-both-lbs", "restart-services-running-old-code-on-web2"):
        assert sid in detail, sid
    assert load.failures == [], load.report()
    assert len(load.retried) <= 2, load.report()
    # every node was restarted, and is back in service
    after = main_pids(lab)
    assert [key for key in before if before[key] == after[key]] == [], (before, after)
    for web, states in haproxy_states_of(lab, web_names(lab)).items():  # one salt call
        for lb, state in states.items():
            assert state["admin"] == "ready" and state["status"].startswith("UP"), (lb, web, state)
    for lb in lb_names(lab):
        unit = lab.run(lb, "systemctl is-active keepalived; systemctl is-enabled keepalived", check=False).stdout
        assert unit.split() == ["active", "enabled"], (lb, unit)
    assert len(vip_holders(lab)) == 1
    holder = vip_holders(lab)[0]
    assert f" {lab.internal_vip}/" in lab.run(holder, "ip -4 -o addr show").stdout
