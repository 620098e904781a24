"""orch.patch lists the plan the runner lemp_patch computes from the
minions' answers at render time: rendered here with canned answers of a
healthy lab (the runner's questions faked, as in test_galera_orch_render.py),
the runbook for tiers [lb, web]: the LB without the VIPs first, then the
holder, then each web node, one step requiring the one before."""

from test_galera_orch_render import env, render  # noqa: F401  (env: a fixture)
from test_patch import TOPOLOGY, healthy_facts


def answers():
    facts = healthy_facts()
    return {"cmd.run": facts["addrs"], "haproxy_runtime.show_stat": facts["stat"],
            "galera.status": facts["galera"], "test.ping": facts["ping"]}


def test_lb_and_web_tiers_render_one_node_at_a_time(env):  # noqa: F811
    opts = dict(env, pillar=dict(env["pillar"], tiers=["lb", "web"], restart="always", maintenance=False))
    high, calls = render(opts, "orch.patch", answers())
    ids = list(high)
    order = [ids.index(sid) for sid in (
        "the-patch-plan", "drain-web1-on-both-lbs", "enable-web1-on-both-lbs", "drain-web2-on-both-lbs",
        "move-the-vips-off-lb2-stop-its-keepalived", "put-lb2-back-in-the-vrrp-group-start-its-keepalived",
        "move-the-vips-off-lb1-stop-its-keepalived", "wait-until-one-lb-holds-both-vips-after-lb1")]
    assert order == sorted(order), ids
    # every step requires the one before it: the run stops at the first failure
    for before, sid in zip(ids[1:], ids[2:]):
        body = next(iter(high[sid].values()))
        required = [a["require"] for a in body if isinstance(a, dict) and "require" in a]
        assert required and list(required[0][0].values()) == [before], (sid, required)
    restart = dict(kv for a in high["restart-services-running-old-code-on-web1"]["salt"] if isinstance(a, dict)
                   for kv in a.items())
    assert restart["kwarg"]["policy"] == "always" and restart["tgt"] == "web1"
    assert ("haproxy_runtime.show_stat", ["lb1", "lb2"]) in calls
    assert TOPOLOGY["master"] not in [c[1] for c in calls if c[0] == "test.ping"][0]


def test_a_drained_web_node_refuses_the_run(env):  # noqa: F811
    canned = answers()
    canned["haproxy_runtime.show_stat"]["lb2"] = [{"pxname": "web", "svname": "web1", "status": "DRAIN"},
                                                   {"pxname": "web", "svname": "web2", "status": "UP"}]
    high, _ = render(env, "orch.patch", canned)
    assert list(high) == ["patch-refused-nothing-was-touched"]
