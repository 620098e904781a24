#!/usr/bin/env python3
"""Draw the lemp-ha architecture from what the code deploys.

Inputs, all read from the repository (or given on the command line):

* pillar/topology.yaml: machines, addresses, roles, the public and internal
  VIPs, the scaling pool;
* pillar/roles.yaml: the states each role applies. A machine's box lists one
  label per state its roles apply (the derived topology's ``states``, from
  _modules/lemp_topology.py); ``common``, which every machine applies, is
  listed once, from the includes of salt/common/init.sls. STATE_LABELS below
  names each state; a state that a role applies and that has no label stops
  the generation, and a label whose state no role applies is not drawn;
* pillar/ports.yaml through _modules/lemp_firewall.py: the firewall zones
  (public, admin, internal) and the endpoints on each VIP.

One layout (boxes and edges with absolute coordinates) is written twice, so
that the two files never drift apart:

* lemp-ha.drawio: draw.io / diagrams.net XML, editable;
* lemp-ha.svg: the same boxes, lines and labels;

then the SVG is rendered to lemp-ha.png by headless Chromium, and the SVG's
sha256 is stored in the PNG (tEXt chunk ``lemp-ha:svg-sha256``) and in the
.drawio (attribute ``svgSha256``): tests/unit/test_architecture_diagram.py
checks the PNG against the SVG without comparing pixels.

Usage: python3 docs/architecture/diagram.py [--out DIR] [--topology FILE]
       [--roles FILE] [--ports FILE] [--no-png]
"""

import argparse
import hashlib
import importlib.util
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TOPOLOGY = REPO / "pillar" / "topology.yaml"
ROLES = REPO / "pillar" / "roles.yaml"
PORTS = REPO / "pillar" / "ports.yaml"
COMMON_SLS = REPO / "salt" / "common" / "init.sls"
DRAWIO_NAME, SVG_NAME, PNG_NAME = "lemp-ha.drawio", "lemp-ha.svg", "lemp-ha.png"
PNG_HASH_KEY = "lemp-ha:svg-sha256"
REGENERATE = "python3 docs/architecture/diagram.py"

TITLE = "lemp-ha — no single point of failure"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FONT_SIZE = 12
LINE_HEIGHT = 15

# What a box says for each state a role applies (pillar/roles.yaml) and each
# state `common` includes (salt/common/init.sls). Short: one line each.
STATE_LABELS = {
    # common: every machine
    "common.package": "base packages",
    "common.hosts": "/etc/hosts",
    "common.time": "chrony (VMs, bare metal)",
    "common.ssh": "SSH, keys only",
    "common.updates": "security updates (orch.patch)",
    "zabbix.agent": "Zabbix agent 2 (PSK)",
    "rsyslog": "logs → mon1 (RELP)",
    "firewall": "nftables firewall (pillar/ports.yaml)",
    # master
    "master": "Salt master · pillar (GPG secrets) · reactor",
    "zabbix.watchdog": "watchdog: mails ops when mon1 stops",
    "zabbix.sender": "zabbix_sender: scaling decisions",
    # lb
    "haproxy": "HAProxy: TLS, web backend, endpoints",
    "keepalived": "keepalived: both VIPs (VRRP)",
    "redis.sentinel": "Redis Sentinel",
    # web, web_pool
    "phpfpm": "PHP-FPM 8.2",
    "nginx": "nginx (HTTPS behind HAProxy)",
    "redis": "Redis: PHP sessions (master/replica)",
    "glusterfs": "GlusterFS brick: uploads",
    "glusterfs.client": "GlusterFS client: uploads",
    "webapp": "the app: releases/<version>",
    # db, arbitrator, backup
    "galera": "MariaDB 10.11 Galera (TLS, binlogs)",
    "galera.backup_source": "backup source (ssh forced command)",
    "garbd": "garbd: Galera arbitrator",
    "glusterfs.arbiter": "GlusterFS arbiter brick",
    "backup": "backup store: snapshots, binlog archive",
    # monitor
    "openldap": "OpenLDAP (lab directory)",
    "zabbix.server": "Zabbix 6.0 server · web UI · alerts",
    "rsyslog.server": "rsyslog: every machine's logs",
}

# Colours per tier: (fill of the container body, header/stroke colour, header fill).
PALETTE = {
    "users": ("#f5f5f5", "#666666", "#f5f5f5"),
    "staff": ("#f5f5f5", "#666666", "#f5f5f5"),
    "lb": ("#eef4fc", "#6c8ebf", "#dae8fc"),
    "web": ("#eef6ec", "#82b366", "#d5e8d4"),
    "db": ("#fff5ea", "#d79b00", "#ffe6cc"),
    "mgmt": ("#f6f0f8", "#9673a6", "#e1d5e7"),
    "vip": ("#fff2cc", "#d6b656", "#fff2cc"),
    "zones": ("#fbfbfb", "#b85450", "#fbfbfb"),
    "legend": ("#ffffff", "#999999", "#ffffff"),
}

# Edge kinds: colour, width, dash pattern (None = solid), legend text.
EDGE_KINDS = {
    "user": ("#222222", 2.0, None, "requests (app traffic)"),
    "mgmt": ("#7b5a92", 1.5, "8 5", "management / monitoring"),
    "repl": ("#b46504", 2.0, "2 4", "Galera replication"),
    "backup": ("#10739e", 2.0, "10 3 2 3", "backups (arb1 pulls)"),
    "react": ("#ae4132", 2.0, "4 3", "events → reactor → orchestration"),
}

# Geometry.
TOP = 124            # y of the tier containers (room above for the endpoint edges)
HEADER = 30          # swimlane header height
PAD = 20             # inner padding of containers
LEFT_X, LEFT_W = 20, 270
TIER_X = {"lb": 320, "web": 770, "db": 1230}
TIER_W = {"lb": 320, "web": 390, "db": 370}
MGMT_GAP = 96        # between the tiers and the management row
CANVAS_W = 1630


class DiagramError(ValueError):
    """The inputs cannot be drawn; the message names the file and the fix."""


# ----------------------------------------------------------------- model ---

@dataclass
class Box:
    id: str
    x: float
    y: float
    w: float
    h: float
    lines: list
    kind: str                 # palette key
    parent: str = "1"         # drawio parent id (containers: their own id)
    container: bool = False   # swimlane with a header
    dashed: bool = False      # the scaling pool
    align: str = "center"
    text_only: bool = False
    font_size: int = FONT_SIZE

    def anchor(self, fx, fy):
        return (self.x + fx * self.w, self.y + fy * self.h)


@dataclass
class Edge:
    id: str
    kind: str                         # EDGE_KINDS key
    src: str = None                   # box id, or None with src_point
    dst: str = None
    exit: tuple = (1, 0.5)
    entry: tuple = (0, 0.5)
    src_point: tuple = None
    dst_point: tuple = None
    points: list = field(default_factory=list)
    label: list = field(default_factory=list)
    label_at: float = 0.5             # where the label sits, as a fraction of the path
    arrow_end: bool = True
    arrow_start: bool = False


@dataclass
class Diagram:
    width: float
    height: float
    boxes: dict = field(default_factory=dict)    # id -> Box, in drawing order
    edges: list = field(default_factory=list)

    def add(self, box):
        assert box.id not in self.boxes, box.id
        self.boxes[box.id] = box
        return box

    def connect(self, **kw):
        edge = Edge(id=f"e{len(self.edges) + 1}", **kw)
        self.edges.append(edge)
        return edge

    def path(self, edge):
        """The absolute polyline of an edge."""
        start = edge.src_point or self.boxes[edge.src].anchor(*edge.exit)
        end = edge.dst_point or self.boxes[edge.dst].anchor(*edge.entry)
        return [start, *edge.points, end]


# ---------------------------------------------------------------- inputs ---

def _module(name):
    """_modules/<name>.py, the validator every reader of the topology uses."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "_modules" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def read_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def common_states(path=COMMON_SLS):
    """The sls that `common` includes (salt/common/init.sls: plain YAML)."""
    included = (read_yaml(path) or {}).get("include")
    if not isinstance(included, list) or not included:
        raise DiagramError(f"{path}: expected a list under `include:` (the states every machine applies)")
    return included


@dataclass
class Inputs:
    topology: dict             # the derived topology (lemp_topology.validate)
    common: list               # the states `common` includes
    ports: list                # the port matrix (lemp_firewall.port_matrix)
    admin: list                # the admin networks


def load_inputs(topology=TOPOLOGY, roles=ROLES, ports=PORTS, common=COMMON_SLS):
    lemp_topology, lemp_firewall = _module("lemp_topology"), _module("lemp_firewall")
    derived = lemp_topology.validate(read_yaml(topology), read_yaml(roles))
    services = lemp_firewall.check_services(read_yaml(ports), derived)
    return Inputs(derived, common_states(common), lemp_firewall.port_matrix(derived, services),
                  lemp_firewall.admin_networks(derived))


def label(state, where):
    if state not in STATE_LABELS:
        raise DiagramError(
            f"diagram: {where} applies state {state!r}, which has no label: add it to STATE_LABELS in "
            f"docs/architecture/diagram.py, then run {REGENERATE}")
    return STATE_LABELS[state]


def state_lines(states):
    """The labels of a machine's states, `common` left out (drawn once)."""
    return [label(s, "a role of pillar/roles.yaml") for s in states if s != "common"]


def common_lines(inputs):
    return [label(s, "salt/common/init.sls (every machine)") for s in inputs.common]


def members(inputs, *roles):
    """[(name, machine)] of the machines having any of roles, in topology order."""
    return [(name, m) for name, m in inputs.topology["machines"].items() if set(roles) & set(m["roles"])]


def members_roles(inputs, name):
    return inputs.topology["machines"][name]["roles"]


def machine_lines(name, machine):
    return [f"**{name} · {machine['address']} · {', '.join(machine['roles'])}", *state_lines(machine["states"])]


def ports_text(rows):
    """':80, :443' of matrix rows, in order, once each."""
    seen = []
    for row in rows:
        for port in row["ports"] or [row["proto"]]:
            if port not in seen:
                seen.append(port)
    return ", ".join(p if p in ("vrrp",) else f":{p}" for p in seen)


def zone_of(row):
    if row["sources"] is None:
        return "public"
    return "admin" if "admin" in row["from"] else "internal"


def services_by_zone(inputs):
    zones = {"public": [], "admin": [], "internal": []}
    for row in inputs.ports:
        zones[zone_of(row)].append(row)
    return zones


def zone_service_lines(rows):
    """'lb: haproxy-stats :8404' lines, a service served by several groups once."""
    merged = {}
    for row in rows:
        key = (row["service"], tuple(row["ports"]))
        merged.setdefault(key, []).append(row)
    return [f"· {' + '.join(r['group'] for r in group)}: {key[0]} {ports_text(group)}"
            for key, group in merged.items()]


# ---------------------------------------------------------------- layout ---

def box_height(lines):
    return len(lines) * LINE_HEIGHT + 16


def stack(diagram, tier, items, gap):
    """Place items [(id, lines, kind, options)] top-down in a tier; return the bottom y."""
    x, w = TIER_X[tier] + PAD, TIER_W[tier] - 2 * PAD
    y = TOP + HEADER + PAD - 5
    for item_id, lines, kind, options in items:
        h = options.pop("h", box_height(lines))
        diagram.add(Box(item_id, x, y, options.pop("w", w), h, lines, kind,
                        parent=f"tier_{tier}", **options))
        y += h + gap
    return y - gap


def add_title(diagram, inputs):
    net = inputs.topology["network"]
    diagram.add(Box("title", 20, 14, 700, 30, [TITLE], "legend",
                    text_only=True, align="left", font_size=24))
    diagram.add(Box("subtitle", 20, 48, 1200, 18,
                    [f"network {net['subnet']} · domain {net['domain']} · machines: pillar/topology.yaml · "
                     "what each runs: the states of pillar/roles.yaml · zones: pillar/ports.yaml"],
                    "legend", text_only=True, align="left", font_size=12))


def endpoint_lines(inputs, to):
    """'http :80 · https :443' and who may reach them, for the services on a VIP
    (pillar/ports.yaml `to`), those with the same sources on one line."""
    groups = {}
    for row in inputs.ports:
        if row["to"] == to:
            sources = "anyone" if row["sources"] is None else ", ".join(row["from"])
            groups.setdefault(sources, []).append(f"{row['service']} {ports_text([row])}")
    return [line for sources, services in groups.items() for line in (" · ".join(services), f"from {sources}")]


def layout_lb_tier(diagram, inputs):
    net = inputs.topology["network"]
    lbs = members(inputs, "lb")
    holders = " / ".join(name for name, _ in lbs)
    items = [("vip", [f"**public VIP {net['vip']}", f"held by {holders} (keepalived)",
                      *endpoint_lines(inputs, "vip")], "vip", {})]
    items += [(name, machine_lines(name, m), "lb", {}) for name, m in lbs]
    items.append(("internal_vip", [f"**internal VIP {net['internal_vip']}", "internal endpoints (HAProxy)",
                                   *endpoint_lines(inputs, "internal_vip")], "vip", {}))
    return stack(diagram, "lb", items, gap=14)


def pool_lines(inputs):
    pool = inputs.topology["pool_machines"]
    if not pool:
        return []
    names, entries = list(pool), list(pool.values())
    web = inputs.topology["scaling"]["web"]
    span = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
    addresses = entries[0]["address"] if len(entries) == 1 else f"{entries[0]['address']} … {entries[-1]['address']}"
    return [f"**scaling pool · web_pool: {span}", f"{addresses} · {web['min']} to {web['max']} web machines",
            *state_lines(entries[0]["states"])]


def layout_web_tier(diagram, inputs):
    items = [(name, machine_lines(name, m), "web", {}) for name, m in members(inputs, "web")]
    if inputs.topology["pool_machines"]:
        items.append(("pool", pool_lines(inputs), "web", {"dashed": True}))
    return stack(diagram, "web", items, gap=14)


def layout_db_tier(diagram, inputs):
    items = [(name, machine_lines(name, m), "db", {}) for name, m in members(inputs, "db")]
    items += [(name, machine_lines(name, m), "db", {})
              for name, m in members(inputs, "arbitrator", "backup") if (name, m) not in members(inputs, "db")]
    return stack(diagram, "db", items, gap=50)


def zone_lines(inputs):
    zones = services_by_zone(inputs)
    internal = zones["internal"]
    return ["**Firewall zones (pillar/ports.yaml)",
            "**public: anyone",
            *zone_service_lines(zones["public"]),
            f"**admin: {', '.join(inputs.admin)}",
            "· every machine: ssh :22",
            *zone_service_lines(zones["admin"]),
            "**internal: the platform's machines",
            f"· {len(internal)} services, each open only to",
            "  the roles that use them",
            "  (the matrix: docs/security.md)"]


def add_left_column(diagram, inputs):
    vip = diagram.boxes["vip"]
    diagram.add(Box("users", LEFT_X, vip.y, 130, 58, ["**Users", "browsers, API", "(public zone)"], "users"))
    lines = zone_lines(inputs)
    top = vip.y + vip.h + 40
    diagram.add(Box("zones", LEFT_X, top, LEFT_W, len(lines) * 14 + 16, lines, "zones",
                    align="left", font_size=11))
    return top + len(lines) * 14 + 16


def add_tier_containers(diagram, bottom):
    """The swimlanes, inserted before their children (drawio needs parents first)."""
    titles = {"lb": "Load balancers", "web": "Web tier", "db": "Database tier"}
    height = bottom + PAD - TOP
    containers = {f"tier_{t}": Box(f"tier_{t}", TIER_X[t], TOP, TIER_W[t], height,
                                   [titles[t]], t, container=True) for t in titles}
    diagram.boxes = {**containers, **diagram.boxes}


def layout_mgmt_row(diagram, inputs, top):
    """Monitoring under the load balancers, the Salt master under web and db; staff on the left."""
    x0, x1 = TIER_X["lb"], TIER_X["db"] + TIER_W["db"]
    monitors, masters = members(inputs, "monitor"), members(inputs, "master")
    lines = {name: machine_lines(name, m) for name, m in monitors + masters}
    h = max(box_height(v) for v in lines.values())
    y = top + HEADER + PAD - 5
    diagram.add(Box("tier_mgmt", x0, top, x1 - x0, HEADER + PAD + h + PAD - 5,
                    ["Management & monitoring"], "mgmt", container=True))
    spans = [(monitors, TIER_X["lb"] + PAD, TIER_X["lb"] + TIER_W["lb"] - PAD),
             (masters, TIER_X["web"] + PAD, x1 - PAD)]
    for group, left, right in spans:
        w = (right - left - PAD * (len(group) - 1)) / max(len(group), 1)
        for i, (name, _) in enumerate(group):
            diagram.add(Box(name, left + i * (w + PAD), y, w, h, lines[name], "mgmt",
                            parent="tier_mgmt", align="left"))
    if monitors:
        diagram.add(Box("staff", LEFT_X, y, 190, h, ["**Staff / ops", "(admin zone)", "sign in with LDAP",
                                                    "get mail and webhook alerts"], "staff"))
    return top + HEADER + PAD + h + PAD - 5


def add_legend(diagram, inputs, top):
    """One strip: the edge kinds, the dashed box, and what every machine runs."""
    h = 62
    diagram.add(Box("legend", LEFT_X, top, CANVAS_W - 2 * LEFT_X, h, [], "legend"))
    x, y = LEFT_X + 12, top + 18
    for kind, (_, _, _, text) in EDGE_KINDS.items():
        diagram.connect(kind=kind, src_point=(x, y), dst_point=(x + 40, y), arrow_end=True)
        w = len(text) * 6.6 + 20
        diagram.add(Box(f"legend_{kind}", x + 48, y - 9, w, 18, [text], "legend", text_only=True, align="left"))
        x += 48 + w + 14
    diagram.add(Box("legend_dashed", x, y - 10, 36, 20, [], "legend", dashed=True))
    diagram.add(Box("legend_dashed_text", x + 44, y - 9, 200, 18, ["scaling pool (autoscaled)"], "legend",
                    text_only=True, align="left"))
    diagram.add(Box("legend_common", LEFT_X + 12, top + 34, CANVAS_W - 2 * LEFT_X - 24, 20,
                    ["every machine (state common): " + " · ".join(common_lines(inputs))], "legend",
                    text_only=True, align="left"))
    return top + h


# ----------------------------------------------------------------- edges ---

def overlap_y(a, b):
    """A y shared by two boxes side by side (middle of their overlap), else a's centre."""
    lo, hi = max(a.y, b.y), min(a.y + a.h, b.y + b.h)
    return (lo + hi) / 2 if hi > lo else a.y + a.h / 2


def horizontal(diagram, src, dst, kind, label, y=None, **kw):
    """A straight horizontal edge from src's right side to dst's left side (or back)."""
    a, b = diagram.boxes[src], diagram.boxes[dst]
    y = overlap_y(a, b) if y is None else y
    left_to_right = a.x < b.x
    return diagram.connect(kind=kind, src=src, dst=dst, exit=(1 if left_to_right else 0, (y - a.y) / a.h),
                           entry=(0 if left_to_right else 1, (y - b.y) / b.h), label=label, **kw)


def add_request_edges(diagram, inputs):
    horizontal(diagram, "users", "vip", "user", ["HTTPS :443", "(:80 → 301)"])
    webs = [name for name, _ in members(inputs, "web")] + (["pool"] if "pool" in diagram.boxes else [])
    for i, name in enumerate(webs):
        diagram.connect(kind="user", src="vip", dst=name, exit=(1, 0.3), entry=(0, 0.15),
                        label=["HTTPS :443", "check /healthz"] if i == 0 else [], label_at=0.45)
    # The app reaches the database and its sessions through the internal VIP.
    tier, ivip = diagram.boxes["tier_web"], diagram.boxes["internal_vip"]
    y = ivip.y + ivip.h * 0.5
    diagram.connect(kind="user", src="tier_web", dst="internal_vip", exit=(0, (y - tier.y) / tier.h),
                    entry=(1, 0.5), label=["app: SQL :3306", "sessions :6379"])
    lb, web, db = diagram.boxes["tier_lb"], diagram.boxes["tier_web"], diagram.boxes["tier_db"]
    dbs = [name for name, _ in members(inputs, "db")]
    if dbs:
        sx, dx, y = lb.x + lb.w * 0.55, db.x + db.w * 0.5, TOP - 30
        diagram.connect(kind="user", src="tier_lb", dst="tier_db", exit=(0.55, 0), entry=(0.5, 0),
                        points=[(sx, y), (dx, y)], label_at=0.6,
                        label=[f"int. VIP :3306 → {dbs[0]} (writer)"
                               + (f", {', '.join(dbs[1:])} backup" if dbs[1:] else "") + " · check :9200"])
    if members(inputs, "web") and any("redis" in m["states"] for _, m in members(inputs, "web")):
        sx, dx, y = lb.x + lb.w * 0.85, web.x + web.w * 0.3, TOP - 12
        diagram.connect(kind="user", src="tier_lb", dst="tier_web", exit=(0.85, 0), entry=(0.3, 0),
                        points=[(sx, y), (dx, y)], label=["int. VIP :6379 → Redis master"])


def add_database_edges(diagram, inputs):
    dbs = [name for name, _ in members(inputs, "db")]
    garbd = [m["name"] for m in inputs.topology["garbd"]]
    for a, b in zip(dbs, dbs[1:]):
        diagram.connect(kind="repl", src=a, dst=b, exit=(0.35, 1), entry=(0.35, 0),
                        label=["Galera wsrep (TLS)", "IST / SST"], arrow_start=True)
    if dbs and garbd:
        diagram.connect(kind="repl", src=dbs[-1], dst=garbd[0], exit=(0.35, 1), entry=(0.35, 0),
                        label=["garbd votes"], arrow_start=True)
    stores = [name for name, m in members(inputs, "backup") if "backup" in m["states"]]
    sources = [name for name, m in members(inputs, "db") if "galera.backup_source" in m["states"]]
    if stores and sources:
        # arb1 pulls a backup from the writer over ssh, and the binlogs through the
        # internal VIP: one bracket on the right of the data nodes.
        store = diagram.boxes[stores[0]]
        x = store.x + store.w * 0.8
        for i, name in enumerate(sources):
            box = diagram.boxes[name]
            last = i == len(sources) - 1
            diagram.connect(kind="backup", src=name, dst=stores[0], exit=(0.8, 1), entry=(0.8, 0),
                            points=[] if last else [(x, box.y + box.h + 25), (box.x + box.w + 8, box.y + box.h + 25),
                                                    (box.x + box.w + 8, store.y - 25), (x, store.y - 25)],
                            label=["backups: ssh :22", "binlogs: int. VIP"] if last else [],
                            arrow_end=last)


def add_management_bus(diagram, inputs, mgmt_top):
    """One dashed bus between the tiers and the management row instead of an edge per machine."""
    y = mgmt_top - 30
    x0, x1 = TIER_X["lb"] + 10, TIER_X["db"] + TIER_W["db"] - 10
    diagram.connect(kind="mgmt", src_point=(x0, y), dst_point=(x1, y), arrow_end=False, label_at=0.78,
                    label=["every machine: Salt → salt1 :4505-4506", "Zabbix :10050/:10051, logs :2514 ↔ mon1"])
    # Where the bus meets each tier and each management machine: clear of the
    # reactor's edges (add_reactor_edges) and of the bus's label.
    for tier, at in (("tier_lb", 0.5), ("tier_web", 0.3), ("tier_db", 0.7)):
        box = diagram.boxes[tier]
        diagram.connect(kind="mgmt", src_point=(box.x + box.w * at, y), dst=tier, entry=(at, 1))
    for name in (b.id for b in list(diagram.boxes.values()) if b.parent == "tier_mgmt"):
        box = diagram.boxes[name]
        at = 0.3 if "master" in members_roles(inputs, name) else 0.15
        diagram.connect(kind="mgmt", src=name, exit=(at, 0), dst_point=(box.x + box.w * at, y),
                        arrow_end=False)


def add_staff_edges(diagram, inputs):
    monitors = [name for name, m in members(inputs, "monitor") if "zabbix.server" in m["states"]]
    if not monitors or "staff" not in diagram.boxes:
        return
    mon = diagram.boxes[monitors[0]]
    horizontal(diagram, "staff", monitors[0], "mgmt", ["Zabbix UI :443"], y=mon.y + mon.h * 0.3)
    horizontal(diagram, monitors[0], "staff", "mgmt", ["mail · webhook"], y=mon.y + mon.h * 0.7)


def add_reactor_edges(diagram, inputs):
    """The events the master's reactor turns into orchestrations (reactor/*.sls)."""
    masters = [name for name, m in members(inputs, "master") if "master" in m["states"]]
    if not masters or "pool" not in diagram.boxes:
        return
    master, pool, lb = diagram.boxes[masters[0]], diagram.boxes["pool"], diagram.boxes["tier_lb"]
    px = pool.x + pool.w * 0.55
    diagram.connect(kind="react", src="pool", dst=masters[0], exit=(0.55, 1),
                    entry=((px - master.x) / master.w, 0), arrow_start=True, label_at=0.3,
                    label=["minion start → orch.enrol", "orch.scale_out / scale_in"])
    # orch.enrol fills the new node's slot on both load balancers.
    sx, y = master.x + master.w * 0.04, lb.y + lb.h + 22
    diagram.connect(kind="react", src=masters[0], dst="tier_lb", exit=(0.04, 0), entry=(0.75, 1),
                    points=[(sx, y), (lb.x + lb.w * 0.75, y)], label_at=0.5, label=["orch.enrol: HAProxy slot"])
    monitors = [name for name, m in members(inputs, "monitor") if "zabbix.server" in m["states"]]
    if monitors:
        horizontal(diagram, monitors[0], masters[0], "react", ["scale request", "→ orch.autoscale"])


def build(inputs):
    diagram = Diagram(CANVAS_W, 0)
    add_title(diagram, inputs)
    bottom = max(layout_lb_tier(diagram, inputs), layout_web_tier(diagram, inputs),
                 layout_db_tier(diagram, inputs))
    bottom = max(bottom, add_left_column(diagram, inputs) - PAD)
    add_tier_containers(diagram, bottom)
    mgmt_top = bottom + PAD + MGMT_GAP
    legend_top = layout_mgmt_row(diagram, inputs, mgmt_top) + 20
    diagram.height = add_legend(diagram, inputs, legend_top) + 20
    add_request_edges(diagram, inputs)
    add_database_edges(diagram, inputs)
    add_management_bus(diagram, inputs, mgmt_top)
    add_staff_edges(diagram, inputs)
    add_reactor_edges(diagram, inputs)
    return diagram

# ---------------------------------------------------------------- drawio ---

def node_fill(box):
    """Machines and services are white inside their tier; VIP and users are tinted."""
    return PALETTE[box.kind][0] if box.kind in ("vip", "users") else "#ffffff"


def html_label(lines):
    parts = [f"<b>{esc(l[2:])}</b>" if l.startswith("**") else esc(l) for l in lines]
    return "<br>".join(parts)


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def box_style(box):
    fill, stroke, header = PALETTE[box.kind]
    common = f"html=1;whiteSpace=wrap;fontFamily=Helvetica;fontSize={box.font_size};"
    if box.text_only:
        return (f"text;{common}align={box.align};verticalAlign=middle;"
                f"fontStyle={1 if box.font_size > 16 else 0};strokeColor=none;fillColor=none;")
    if box.container:
        return (f"swimlane;{common}rounded=1;absoluteArcSize=1;arcSize=16;"
                f"startSize={HEADER};fontStyle=1;"
                f"fillColor={header};swimlaneFillColor={fill};strokeColor={stroke};"
                "collapsible=0;")
    style = (f"rounded=1;arcSize=10;{common}fillColor={node_fill(box)};strokeColor={stroke};"
             f"align={box.align};verticalAlign=middle;spacingLeft=6;")
    return style + ("dashed=1;dashPattern=6 4;" if box.dashed else "")


def edge_style(edge):
    colour, width, dash, _ = EDGE_KINDS[edge.kind]
    style = (f"edgeStyle=none;rounded=0;html=1;strokeColor={colour};strokeWidth={width};"
             "fontFamily=Helvetica;fontSize=11;labelBackgroundColor=#ffffff;"
             f"endArrow={'block' if edge.arrow_end else 'none'};endFill=1;endSize=8;"
             f"startArrow={'block' if edge.arrow_start else 'none'};startFill=1;startSize=8;")
    if dash:
        style += f"dashed=1;dashPattern={dash};"
    if edge.src:
        style += f"exitX={edge.exit[0]:.4g};exitY={edge.exit[1]:.4g};exitPerimeter=0;"
    if edge.dst:
        style += f"entryX={edge.entry[0]:.4g};entryY={edge.entry[1]:.4g};entryPerimeter=0;"
    return style


def drawio_vertex(root, diagram, box):
    parent = diagram.boxes.get(box.parent)
    ox, oy = (parent.x, parent.y) if parent else (0, 0)
    cell = ET.SubElement(root, "mxCell", id=box.id, value=html_label(box.lines),
                         style=box_style(box), vertex="1", parent=box.parent)
    ET.SubElement(cell, "mxGeometry", x=fmt(box.x - ox), y=fmt(box.y - oy),
                  width=fmt(box.w), height=fmt(box.h), **{"as": "geometry"})


def drawio_edge(root, edge):
    attrs = {"id": edge.id, "value": html_label(edge.label), "style": edge_style(edge),
             "edge": "1", "parent": "1"}
    if edge.src:
        attrs["source"] = edge.src
    if edge.dst:
        attrs["target"] = edge.dst
    cell = ET.SubElement(root, "mxCell", attrs)
    # drawio places an edge's label at x in [-1, 1] along the edge (0: the middle).
    geometry = ET.SubElement(cell, "mxGeometry", relative="1", **{"as": "geometry"})
    if edge.label and edge.label_at != 0.5:
        geometry.set("x", fmt(edge.label_at * 2 - 1))
    if edge.src_point:
        ET.SubElement(geometry, "mxPoint", x=fmt(edge.src_point[0]), y=fmt(edge.src_point[1]),
                      **{"as": "sourcePoint"})
    if edge.dst_point:
        ET.SubElement(geometry, "mxPoint", x=fmt(edge.dst_point[0]), y=fmt(edge.dst_point[1]),
                      **{"as": "targetPoint"})
    if edge.points:
        array = ET.SubElement(geometry, "Array", **{"as": "points"})
        for x, y in edge.points:
            ET.SubElement(array, "mxPoint", x=fmt(x), y=fmt(y))


def to_drawio(diagram, svg_sha256):
    """The drawio file; it names the SVG it was written with (its sha256)."""
    mxfile = ET.Element("mxfile", host="lemp-ha docs/architecture/diagram.py", type="device",
                        svgSha256=svg_sha256)
    page = ET.SubElement(mxfile, "diagram", id="lemp-ha", name="lemp-ha")
    model = ET.SubElement(page, "mxGraphModel", dx="1400", dy="900", grid="1", gridSize="10",
                          guides="1", tooltips="1", connect="1", arrows="1", fold="1",
                          page="1", pageScale="1", pageWidth=fmt(diagram.width),
                          pageHeight=fmt(diagram.height), math="0", shadow="0")
    root = ET.SubElement(model, "root")
    ET.SubElement(root, "mxCell", id="0")
    ET.SubElement(root, "mxCell", id="1", parent="0")
    for box in diagram.boxes.values():
        drawio_vertex(root, diagram, box)
    for edge in diagram.edges:
        drawio_edge(root, edge)
    ET.indent(mxfile)
    return ET.tostring(mxfile, encoding="unicode") + "\n"


def fmt(value):
    return f"{value:.6g}"


# ------------------------------------------------------------------- svg ---

def svg_text(parent, x, y, lines, align="middle", size=FONT_SIZE, bold_all=False):
    """Lines centred vertically on y; '**' marks a bold line."""
    top = y - (len(lines) - 1) * LINE_HEIGHT / 2
    for i, line in enumerate(lines):
        bold = bold_all or line.startswith("**")
        text = ET.SubElement(parent, "text", x=fmt(x), y=fmt(top + i * LINE_HEIGHT),
                             **{"text-anchor": align, "dominant-baseline": "central",
                                "font-size": str(size),
                                "font-weight": "bold" if bold else "normal"})
        text.text = line[2:] if line.startswith("**") else line


def svg_box(svg, box):
    fill, stroke, header = PALETTE[box.kind]
    group = ET.SubElement(svg, "g", id=box.id)
    if box.text_only:
        anchor, tx = ("start", box.x) if box.align == "left" else ("middle", box.x + box.w / 2)
        svg_text(group, tx, box.y + box.h / 2, box.lines, anchor, box.font_size,
                 bold_all=box.font_size > 16)
        return
    if box.container:
        ET.SubElement(group, "rect", x=fmt(box.x), y=fmt(box.y), width=fmt(box.w),
                      height=fmt(box.h), rx="8", fill=fill, stroke=stroke,
                      **{"stroke-width": "1.5"})
        ET.SubElement(group, "path", fill=header, stroke=stroke, **{"stroke-width": "1.5"},
                      d=f"M{fmt(box.x)},{fmt(box.y + HEADER)} v{-HEADER + 8} "
                        f"a8,8 0 0 1 8,-8 h{fmt(box.w - 16)} a8,8 0 0 1 8,8 v{HEADER - 8} z")
        svg_text(group, box.x + box.w / 2, box.y + HEADER / 2, box.lines, bold_all=True)
        return
    attrs = {"stroke-width": "1.5"}
    if box.dashed:
        attrs["stroke-dasharray"] = "6 4"
    ET.SubElement(group, "rect", x=fmt(box.x), y=fmt(box.y), width=fmt(box.w), height=fmt(box.h),
                  rx=fmt(min(box.w, box.h) * 0.1), fill=node_fill(box), stroke=stroke, **attrs)
    anchor, tx = ("start", box.x + 10) if box.align == "left" else ("middle", box.x + box.w / 2)
    svg_text(group, tx, box.y + box.h / 2, box.lines, anchor, box.font_size)


def arrow_head(tip, previous, colour):
    """Triangle at tip pointing away from previous (as drawio's block arrow)."""
    (x, y), (px, py) = tip, previous
    length = math.hypot(x - px, y - py) or 1
    ux, uy = (x - px) / length, (y - py) / length
    back, half = 10, 4.5
    pts = [(x, y), (x - ux * back - uy * half, y - uy * back + ux * half),
           (x - ux * back + uy * half, y - uy * back - ux * half)]
    return {"points": " ".join(f"{fmt(a)},{fmt(b)}" for a, b in pts), "fill": colour}


def point_along(path, fraction=0.5):
    """The point at fraction of a polyline's length (where drawio puts an edge's label)."""
    segments = list(zip(path, path[1:]))
    lengths = [math.dist(a, b) for a, b in segments]
    remaining = sum(lengths) * fraction
    for (a, b), length in zip(segments, lengths):
        if remaining <= length and length:
            t = remaining / length
            return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
        remaining -= length
    return path[-1]


def svg_edge(svg, labels, diagram, edge):
    colour, width, dash, _ = EDGE_KINDS[edge.kind]
    path = diagram.path(edge)
    attrs = {"fill": "none", "stroke": colour, "stroke-width": str(width)}
    if dash:
        attrs["stroke-dasharray"] = dash
    group = ET.SubElement(svg, "g", id=edge.id)
    ET.SubElement(group, "polyline", points=" ".join(f"{fmt(x)},{fmt(y)}" for x, y in path),
                  **attrs)
    if edge.arrow_end:
        ET.SubElement(group, "polygon", arrow_head(path[-1], path[-2], colour))
    if edge.arrow_start:
        ET.SubElement(group, "polygon", arrow_head(path[0], path[1], colour))
    if edge.label:
        x, y = point_along(path, edge.label_at)
        w = max(len(line) for line in edge.label) * 6.3 + 8
        h = len(edge.label) * LINE_HEIGHT + 2
        ET.SubElement(labels, "rect", x=fmt(x - w / 2), y=fmt(y - h / 2), width=fmt(w),
                      height=fmt(h), fill="#ffffff", opacity="0.92")
        svg_text(labels, x, y, edge.label, size=11)


def to_svg(diagram):
    svg = ET.Element("svg", xmlns="http://www.w3.org/2000/svg", width=fmt(diagram.width),
                     height=fmt(diagram.height),
                     viewBox=f"0 0 {fmt(diagram.width)} {fmt(diagram.height)}",
                     **{"font-family": FONT, "fill": "#1a1a1a"})
    ET.SubElement(svg, "title").text = TITLE
    ET.SubElement(svg, "rect", width="100%", height="100%", fill="#ffffff")
    for box in diagram.boxes.values():
        svg_box(svg, box)
    labels = ET.Element("g", id="edge-labels")
    for edge in diagram.edges:
        svg_edge(svg, labels, diagram, edge)
    svg.append(labels)
    ET.indent(svg)
    return ET.tostring(svg, encoding="unicode") + "\n"


# ------------------------------------------------------------------- png ---

def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def png_chunks(data):
    """[(type, body)] of a PNG file."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DiagramError("not a PNG file")
    chunks, at = [], 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        chunks.append((kind, data[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def png_bytes(chunks):
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def png_text(data):
    """{keyword: text} of a PNG's tEXt chunks."""
    return dict(body.decode("latin-1").split("\0", 1) for kind, body in png_chunks(data) if kind == b"tEXt")


def with_png_text(data, key, value):
    """The PNG with one tEXt chunk key=value (after IHDR), replacing any other of that key."""
    chunks = [(k, b) for k, b in png_chunks(data) if not (k == b"tEXt" and b.split(b"\0", 1)[0] == key.encode())]
    chunks.insert(1, (b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
    return png_bytes(chunks)


def render_png(svg_path, png_path, width, height, svg_sha256):
    """The SVG rendered at 2x by headless Chromium, stamped with the SVG's sha256."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chromium:
        raise DiagramError("diagram: the PNG needs Chromium (Debian package chromium); "
                           "or run with --no-png and render the SVG with another tool")
    with tempfile.TemporaryDirectory(prefix="lemp-ha-diagram-") as tmp:
        shot = Path(tmp) / "shot.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp}/profile", "--force-device-scale-factor=2",
                        f"--window-size={math.ceil(width)},{math.ceil(height)}",
                        f"--screenshot={shot}", Path(svg_path).resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
        png_path.write_bytes(with_png_text(shot.read_bytes(), PNG_HASH_KEY, svg_sha256))


# ------------------------------------------------------------------ main ---

def generate(out=HERE, png=True, **paths):
    """Write the drawio and the SVG (and the PNG) to out; return the diagram."""
    diagram = build(load_inputs(**paths))
    out = Path(out)
    svg = to_svg(diagram)
    digest = sha256(svg)
    (out / SVG_NAME).write_text(svg, encoding="utf-8")
    (out / DRAWIO_NAME).write_text(to_drawio(diagram, digest), encoding="utf-8")
    if png:
        render_png(out / SVG_NAME, out / PNG_NAME, diagram.width, diagram.height, digest)
    return diagram


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw docs/architecture/lemp-ha.{drawio,svg,png} from the code.")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write to (default: beside this script)")
    parser.add_argument("--topology", type=Path, default=TOPOLOGY)
    parser.add_argument("--roles", type=Path, default=ROLES)
    parser.add_argument("--ports", type=Path, default=PORTS)
    parser.add_argument("--no-png", action="store_true", help="write the drawio and the SVG only")
    args = parser.parse_args(argv)
    try:
        diagram = generate(args.out, png=not args.no_png, topology=args.topology, roles=args.roles,
                           ports=args.ports)
    except DiagramError as exc:
        print(exc, file=sys.stderr)
        return 1
    written = [DRAWIO_NAME, SVG_NAME] + ([] if args.no_png else [PNG_NAME])
    print(f"wrote {', '.join(written)} in {args.out} ({len(diagram.boxes)} boxes, {len(diagram.edges)} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
