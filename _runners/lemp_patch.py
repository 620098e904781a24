"""
The plan of ``orch.patch``: security updates, one node at a time, tier by
tier, each node out of service while it is patched (docs/security.md
"Security updates").

    salt-run state.orchestrate orch.patch
    salt-run state.orchestrate orch.patch pillar='{"tiers": ["lb", "web"], "restart": "always"}'

The runner gathers facts (is every minion there, HAProxy's view of the web
nodes, who holds the VIPs, Galera's state) and hands them to pure functions
that decide, unit-tested with sample facts (tests/unit/test_patch.py):

* ``choose``: which nodes, in which order, and which are skipped and why;
* ``health_problems``: what is unhealthy now; any problem refuses the run
  before anything is touched;
* ``patch_steps``: per node, take it out of service, upgrade, restart what
  runs old code, bring it back, wait until it is healthy, then the next.

Tiers, in this order (a machine is patched once, in its first tier):
arbitrator, backup, db, web, lb, monitor. The master is never in the plan:
it runs the orchestration (restarting salt-master would end the run).
"""

import importlib.util
import os
import time

import yaml
from salt.exceptions import CommandExecutionError

# The step builders shared by the lemp_* runners, beside this file.
_spec = importlib.util.spec_from_file_location(
    "lemp_runner_steps", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)
galera = _steps.repo_module("galera")
lemp_patch = _steps.repo_module("lemp_patch")

__virtualname__ = "lemp_patch"

# tier -> the roles whose machines it patches
TIERS = {
    "arbitrator": ("arbitrator",),
    "backup": ("backup",),
    "db": ("db",),
    "web": ("web",),
    "lb": ("lb",),
    "monitor": ("monitor",),
}
TIER_ORDER = tuple(TIERS)
MASTER_REASON = ("the master runs this orchestration (restarting salt-master would end it): patch it by hand "
                 "afterwards, docs/security.md 'Security updates'")

DRAIN_TIMEOUT = 120
UP_TIMEOUT = 60
VIP_TIMEOUT = 30
# Galera: a node catching up by IST (or SST) after its restart
JOIN_TIMEOUT = 1800

# What keepalived does with the VIPs while its LB is patched: stopped, and
# masked for this boot only, so that a keepalived upgrade's own restart
# cannot bring it back (and take the VIPs) before the node is ready.
KEEPALIVED_OUT = "systemctl mask --runtime keepalived && systemctl stop keepalived"
KEEPALIVED_BACK = "systemctl unmask --runtime keepalived && systemctl start keepalived"
IP_ADDRS = "ip -4 -o addr show"
# A patched web node goes back only once its /healthz/deep is healthy
# (lemp_healthz.wait: 200, "status": "ok", "check": "deep"; not the 200
# "maintenance" answer): deep, not the shallow /healthz HAProxy routes on,
# because what a patch replaces (OpenSSL, PHP's mysqli, the CA bundle) can
# break the node's database connection while nginx and PHP-FPM run; that
# node must stay drained. The reason (the node's own loopback sees the
# details) goes to the step's error.
HEALTHZ_URL = "https://127.0.0.1/healthz/deep"
HEALTHZ_WAIT = {"check": "deep", "insecure": True, "attempts": 100, "interval": 0.3, "timeout": 2}

def __virtual__():
    return __virtualname__


def _php_fpm():
    with open(os.path.join(_steps.REPO, "salt", "phpfpm", "defaults.yaml"), encoding="utf-8") as fh:
        return f"php{yaml.safe_load(fh)['phpfpm']['version']}-fpm"


def services(tier, php_fpm="php8.2-fpm"):
    """(always, hold) of a tier: the services ``restart: always`` restarts,
    and those never restarted by orch.patch (reported for an operator):
    Redis on a web node may be the sessions' master (a Sentinel failover
    first, by hand); keepalived on an LB is started again by the step that
    brings the node back."""
    return {
        "arbitrator": (["garb"], []),
        "backup": ([], []),
        "db": (["mariadb"], []),
        "web": ([php_fpm, "nginx"], ["redis-server"]),
        "lb": (["haproxy"], ["keepalived"]),
        "monitor": (["zabbix-server"], []),
    }[tier]


# -- pure functions (unit-tested) -------------------------------------------


def check_pillar(tiers, restart, reboot):
    """(tiers in TIER_ORDER, restart policy); ValueError naming the bad key."""
    if tiers is None or tiers == "":
        tiers = list(TIER_ORDER)
    if isinstance(tiers, str):
        tiers = [tiers]
    if not isinstance(tiers, (list, tuple)) or not tiers:
        raise ValueError(f"pillar tiers: a list of tiers ({', '.join(TIER_ORDER)}), got {tiers!r}")
    if "master" in tiers:
        raise ValueError(f"pillar tiers: 'master' is not patched by orch.patch: {MASTER_REASON}")
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise ValueError(f"pillar tiers: unknown tier {', '.join(map(str, unknown))} (known: {', '.join(TIER_ORDER)})")
    if restart not in lemp_patch.POLICIES:
        raise ValueError(f"pillar restart: {restart!r} is not one of {', '.join(lemp_patch.POLICIES)}")
    if reboot:
        raise ValueError("pillar reboot: orch.patch does not reboot (a kernel update is reported by the restart "
                         "step); reboot a node by hand once it is out of service, docs/security.md")
    return [t for t in TIER_ORDER if t in tiers], restart


def choose(topology, tiers, holder=None):
    """([(tier, node)] in patch order, [(node, reason)] skipped).

    A machine is patched once, in the first of its tiers. The load
    balancers: the one holding the VIPs last (its VIPs move once), and none
    when there is only one (moving its VIPs would stop the site); the data
    nodes: none when there is only one. The master never."""
    order, skipped, seen = [], [], set()
    master = (topology or {}).get("master")
    if master:
        skipped.append((master, MASTER_REASON))
        seen.add(master)
    for tier in TIER_ORDER:
        members = []
        for role in TIERS[tier]:
            members += [n for n in _steps.role(topology, role) if n not in members]
        members = [n for n in members if n not in seen]
        if tier == "lb":
            members.sort(key=lambda n: (n == holder, n))
        alone = tier in ("lb", "db") and len(_steps.role(topology, tier)) < 2
        for name in members:
            seen.add(name)
            if tier in tiers and alone:
                skipped.append((name, f"the only {tier} node: taking it out of service would stop the site"))
            elif tier in tiers:
                order.append((tier, name))
    return order, skipped


def vip_holders(outputs, vips):
    """{vip: [lb, ...]} from the LBs' ``ip -4 -o addr show`` output ({lb: text})."""
    return {vip: sorted(lb for lb, text in outputs.items() if isinstance(text, str) and f" {vip}/" in text)
            for vip in vips}


def single_holder(holders):
    """The LB that holds every VIP, when exactly one holds them all and no
    other holds any; else None."""
    names = {name for found in holders.values() for name in found}
    if len(names) == 1 and all(len(found) == 1 for found in holders.values()):
        return names.pop()
    return None


def health_problems(facts, webs, lbs, dbs, arbitrators, backend, vips, targets):
    """What is unhealthy now, one line each (empty: healthy). ``facts``:
    {ping: {minion: True}, stat: {lb: show_stat rows}, addrs: {lb: text},
    galera: {db: galera.status}}; a minion missing from an answer did not
    answer."""
    problems = []
    ping = facts.get("ping") or {}
    for name in sorted(set(targets) | set(lbs) | set(dbs)):
        if ping.get(name) is not True:
            problems.append(f"{name} does not answer (salt {name} test.ping)")
    stats = facts.get("stat") or {}
    for lb in lbs:
        rows = stats.get(lb)
        if not isinstance(rows, list):
            problems.append(f"{lb}: HAProxy's runtime API gave no server list ({str(rows)[:200]})")
            continue
        status = {r.get("svname"): r.get("status", "") for r in rows if r.get("pxname") == backend}
        for web in webs:
            if not str(status.get(web, "")).startswith("UP"):
                problems.append(f"{web} is not in service on {lb} (status {status.get(web, 'missing')!r}; "
                                f"a drained node: salt {lb} haproxy_runtime.enable {backend} {web})")
    if lbs:
        holders = vip_holders(facts.get("addrs") or {}, vips)
        if not single_holder(holders):
            where = "; ".join(f"{vip} on {', '.join(found) or 'no lb'}" for vip, found in holders.items())
            problems.append(f"the VIPs are not held by exactly one load balancer ({where})")
    answers = facts.get("galera") or {}
    size = len(dbs) + len(arbitrators)
    for db in dbs:
        ret = answers.get(db)
        if not (isinstance(ret, dict) and galera.is_synced(ret)):
            state = ret.get("local_state") if isinstance(ret, dict) else str(ret)[:200]
            problems.append(f"{db} is not Synced in a Primary component ({state})")
        elif int(ret.get("cluster_size") or 0) < size:
            problems.append(f"{db} sees {ret.get('cluster_size')} Galera members, not {size} "
                            f"(the data nodes and garbd)")
    return problems


def _restart(tier, node, policy, php_fpm):
    always, hold = services(tier, php_fpm)
    return _steps.function(f"restart-services-running-old-code-on-{node}", "lemp_patch.restart", node,
                           kwarg={"policy": policy, "always": always, "hold": hold})


def _upgrade(node):
    return _steps.function(f"install-security-updates-on-{node}", "lemp_patch.upgrade", node)


def _wait_holder(sid, lbs, vips, not_on=None):
    return _steps.step(sid, "salt.runner", name="lemp_patch.wait_vip_holder", lbs=list(lbs), vips=list(vips),
                       not_on=not_on, timeout=VIP_TIMEOUT)


def node_steps(tier, node, policy, ctx):
    """One node's runbook: out of service, upgrade, restart, back, healthy."""
    webs, lbs, dbs, arbs = ctx["webs"], ctx["lbs"], ctx["dbs"], ctx["garbd"]
    complete = {"min_cluster_size": len(dbs) + len(arbs)}
    upgrade, restart = _upgrade(node), _restart(tier, node, policy, ctx["php_fpm"])
    if tier == "web":
        on_lbs = {"arg": [ctx["backend"], node]}
        return [
            _steps.function(f"drain-{node}-on-both-lbs", "haproxy_runtime.drain", lbs, **on_lbs),
            _steps.function(f"wait-until-{node}-has-no-session-on-both-lbs", "haproxy_runtime.wait_drained", lbs,
                            **on_lbs, kwarg={"timeout": DRAIN_TIMEOUT}),
            upgrade, restart,
            _steps.function(f"check-healthz-on-{node}", "lemp_healthz.wait", node, arg=[HEALTHZ_URL],
                            kwarg=dict(HEALTHZ_WAIT)),
            _steps.function(f"enable-{node}-on-both-lbs", "haproxy_runtime.enable", lbs, **on_lbs),
            _steps.function(f"wait-until-{node}-is-up-on-both-lbs", "haproxy_runtime.wait_up", lbs,
                            **on_lbs, kwarg={"timeout": UP_TIMEOUT}),
        ]
    if tier == "lb":
        others = [lb for lb in lbs if lb != node]
        return [
            _steps.function(f"move-the-vips-off-{node}-stop-its-keepalived", "cmd.run", node,
                            arg=[KEEPALIVED_OUT], kwarg={"python_shell": True}),
            _wait_holder(f"wait-until-{'-or-'.join(others)}-holds-both-vips", others + [node], ctx["vips"],
                         not_on=node),
            upgrade, restart,
        ] + [
            _steps.function(f"wait-until-{web}-is-up-on-{node}", "haproxy_runtime.wait_up", node,
                            arg=[ctx["backend"], web], kwarg={"timeout": UP_TIMEOUT})
            for web in webs
        ] + [
            _steps.function(f"put-{node}-back-in-the-vrrp-group-start-its-keepalived", "cmd.run", node,
                            arg=[KEEPALIVED_BACK], kwarg={"python_shell": True}),
            _wait_holder(f"wait-until-one-lb-holds-both-vips-after-{node}", lbs, ctx["vips"]),
        ]
    if tier == "db":
        return [
            _steps.function(f"check-galera-cluster-complete-before-patching-{node}", "galera.wait_synced", node,
                            kwarg=dict(timeout=120, **complete)),
            upgrade, restart,
            _steps.function(f"wait-galera-synced-{node}", "galera.wait_synced", node,
                            kwarg=dict(timeout=JOIN_TIMEOUT, **complete)),
        ]
    if tier == "arbitrator" and node in arbs and dbs:
        return [
            _steps.function(f"check-galera-cluster-complete-before-patching-{node}", "galera.wait_synced", dbs[0],
                            kwarg=dict(timeout=120, **complete)),
            upgrade, restart,
            _steps.function(f"wait-until-galera-cluster-is-complete-again-after-{node}", "galera.wait_synced",
                            dbs[0], kwarg=dict(timeout=300, **complete)),
        ]
    return [upgrade, restart]


def patch_steps(order, skipped, policy, ctx):
    """orch.patch's steps, each requiring the one before: sync the module,
    apply common.updates (needrestart, list mode), say the plan, then each node's runbook (``node_steps``) in ``order``."""
    if not order:
        why = "; ".join(f"{n}: {r}" for n, r in skipped) or "no machine in the tiers asked"
        return [_steps.step("nothing-to-patch", "test.succeed_without_changes", name=f"orch.patch: nothing to do ({why})")]
    nodes = [n for _, n in order]
    summary = (f"orch.patch: {', '.join(f'{n} ({t})' for t, n in order)}, one at a time, restart policy {policy}"
               + (f"; skipped: {'; '.join(f'{n}: {r}' for n, r in skipped)}" if skipped else ""))
    steps = [
        _steps.function("sync-custom-modules-on-the-nodes-to-patch", "saltutil.sync_modules",
                        sorted(set(nodes) | set(ctx["lbs"]))),
        # needrestart in list mode before any upgrade (its apt hook then
        # restarts nothing), also on a machine not highstated since
        _steps.state("apply-needrestart-list-mode-on-the-nodes-to-patch", "common.updates", sorted(nodes),
                     queue=True),
        _steps.step("the-patch-plan", "test.succeed_without_changes", name=summary),
    ]
    for tier, node in order:
        steps += node_steps(tier, node, policy, ctx)
    return _steps.chain(steps)


def expiry(order):
    """Minutes after which the maintenance window expires by itself."""
    return 15 + sum(JOIN_TIMEOUT // 60 + 5 if tier == "db" else 10 for tier, _ in order)


# -- runner functions: gather the facts, return the plan --------------------


def _ask(tgt, fun, timeout=60, **kwargs):
    return _steps.ask(__opts__, tgt, fun, timeout, tgt_type="list", **kwargs) if tgt else {}  # noqa: F821


def _context(topology, backend, vips):
    dbs = _steps.role(topology, "db")
    return {"webs": _steps.role(topology, "web"), "lbs": _steps.role(topology, "lb"), "dbs": dbs,
            "garbd": _steps.names((topology or {}).get("garbd")) if dbs else [], "backend": backend,
            "vips": [v for v in vips if v], "php_fpm": _php_fpm()}


def plan(topology, backend="web", tiers=None, restart="needed", reboot=False, maintenance=True):
    """The plan of orch.patch, or a single failing step saying why nothing
    may be touched (a bad pillar, an unhealthy platform)."""
    refused = "patch-refused-nothing-was-touched"
    try:
        tiers, restart = check_pillar(tiers, restart, reboot)
    except ValueError as exc:
        return _steps.plan([_steps.refuse(refused, f"orch.patch: {exc}")])
    network = (topology or {}).get("network") or {}
    ctx = _context(topology, backend, [network.get("vip"), network.get("internal_vip")])
    facts = {
        "addrs": _ask(ctx["lbs"], "cmd.run", arg=[IP_ADDRS]),
        "stat": _ask(ctx["lbs"], "haproxy_runtime.show_stat"),
        "galera": _ask(ctx["dbs"], "galera.status"),
    }
    order, skipped = choose(topology, tiers, single_holder(vip_holders(facts["addrs"], ctx["vips"])))
    targets = [n for _, n in order]
    facts["ping"] = _ask(sorted(set(targets) | set(ctx["lbs"]) | set(ctx["dbs"])), "test.ping", timeout=30)
    problems = health_problems(facts, ctx["webs"], ctx["lbs"], ctx["dbs"], ctx["garbd"], backend, ctx["vips"],
                               targets)
    if problems:
        return _steps.plan([_steps.refuse(refused, "orch.patch: refusing to start, the platform is not healthy: "
                                                   + "; ".join(problems))])
    steps = patch_steps(order, skipped, restart, ctx)
    if not order:
        return _steps.plan(steps)
    return _steps.plan(_steps.with_maintenance(steps, topology, "orch.patch", _steps.run_id(), targets,
                                               expiry(order), maintenance))


def wait_vip_holder(lbs, vips, not_on=None, timeout=VIP_TIMEOUT, interval=0.5):
    """Wait until exactly one of ``lbs`` holds every one of ``vips`` (and
    it is not ``not_on``); the holder's name, or an error after ``timeout``
    seconds naming where the VIPs are.

    CLI Example::

        salt-run lemp_patch.wait_vip_holder '[lb1, lb2]' '[10.77.0.100, 10.77.0.101]' not_on=lb1
    """
    deadline = time.monotonic() + float(timeout)
    while True:
        holders = vip_holders(_ask(list(lbs), "cmd.run", timeout=10, arg=[IP_ADDRS]), vips)
        holder = single_holder(holders)
        if holder and holder != not_on:
            return {"holder": holder}
        if time.monotonic() >= deadline:
            where = "; ".join(f"{vip} on {', '.join(found) or 'no lb'}" for vip, found in holders.items())
            raise CommandExecutionError(f"the VIPs are not on exactly one load balancer"
                                        f"{' other than ' + not_on if not_on else ''} after {timeout}s: {where}")
        time.sleep(float(interval))
