#!/usr/bin/env python3
"""Draw the lemp-ha architecture from pillar/topology.yaml.

One layout (boxes and edges with absolute coordinates) is built from the
topology, then written twice so that the two files never drift apart:

* lemp-ha.drawio: draw.io / diagrams.net XML, editable;
* lemp-ha.svg: the same boxes, lines and labels, for rendering (PNG) and docs.

Machine names and addresses come from the topology; what each role runs is
described here (ROLE_LINES). Usage: python3 docs/architecture/diagram.py
"""

import ipaddress
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TOPOLOGY = HERE.parent.parent / "pillar" / "topology.yaml"
DRAWIO_OUT = HERE / "lemp-ha.drawio"
SVG_OUT = HERE / "lemp-ha.svg"

TITLE = "lemp-ha — no single point of failure"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FONT_SIZE = 12
LINE_HEIGHT = 15

# Colours per tier: (fill of the container body, header/stroke colour, header fill).
PALETTE = {
    "users": ("#f5f5f5", "#666666", "#f5f5f5"),
    "lb": ("#eef4fc", "#6c8ebf", "#dae8fc"),
    "web": ("#eef6ec", "#82b366", "#d5e8d4"),
    "db": ("#fff5ea", "#d79b00", "#ffe6cc"),
    "mgmt": ("#f6f0f8", "#9673a6", "#e1d5e7"),
    "vip": ("#fff2cc", "#d6b656", "#fff2cc"),
    "legend": ("#ffffff", "#999999", "#ffffff"),
}

# Edge kinds: colour, width, dash pattern (None = solid).
EDGE_KINDS = {
    "user": ("#222222", 2.0, None),
    "mgmt": ("#7b5a92", 1.5, "8 5"),
    "repl": ("#b46504", 2.0, "2 4"),
}

# What each role runs (the topology only says which roles a machine has).
ROLE_LINES = {
    "lb": ["HAProxy 2.6 · keepalived · Sentinel"],
    "web": ["nginx · PHP-FPM 8.2 (opcache)", "Redis · Sentinel"],
    "db": ["MariaDB 10.11 Galera", "wsrep TLS · SST mariabackup",
           "binlogs (PITR) · health :9200"],
    "arbitrator": ["garbd — Galera arbitrator"],
    "backup": ["backup store (off the DB machines):",
               "mariabackup snapshots + binlog copies"],
    "master": ["Salt master: states · pillar (GPG-encrypted secrets)",
               "event bus + reactor: new web minion → enrolled in HAProxy",
               "salt-run state.orchestrate orch.site"],
    "monitor": ["Zabbix 6.0 server · web UI · alerts",
                "Zabbix agent on every machine"],
}

# Geometry.
TOP = 100            # y of the tier containers
HEADER = 30          # swimlane header height
PAD = 20             # inner padding of containers
TIER_W = {"lb": 320, "web": 400, "db": 340}
TIER_X = {"lb": 270, "web": 720, "db": 1190}
MGMT_GAP = 70        # between the tiers and the management row
CANVAS_W = 1560


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
    dashed: bool = False      # optional / autoscaled
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


# -------------------------------------------------------------- topology ---

def load_topology(path=TOPOLOGY):
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def machines_with(topology, *roles):
    """[(name, address, roles)] of the machines having any of roles, in file order."""
    return [(name, m["address"], m["roles"])
            for name, m in topology["machines"].items() if set(roles) & set(m["roles"])]


def next_machine(name, address):
    """The placeholder after the last one: web2/10.77.0.22 -> web3/10.77.0.23."""
    match = re.fullmatch(r"(.*?)(\d+)", name)
    prefix, number = (match.group(1), int(match.group(2))) if match else (name, 1)
    return f"{prefix}{number + 1}", str(ipaddress.ip_address(address) + 1)


def machine_lines(name, address, roles):
    lines = [f"**{name} · {address}"]
    for role in roles:
        lines += ROLE_LINES.get(role, [role])
    return lines


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


def add_title(diagram, topology):
    net = topology["network"]
    diagram.add(Box("title", 20, 14, 700, 30, [TITLE], "legend",
                    text_only=True, align="left", font_size=24))
    diagram.add(Box("subtitle", 20, 48, 900, 18,
                    [f"network {net['subnet']} · domain {net['domain']} · "
                     "machines and addresses from pillar/topology.yaml"],
                    "legend", text_only=True, align="left", font_size=12))


def layout_lb_tier(diagram, topology):
    vip = topology["network"]["vip"]
    lbs = machines_with(topology, "lb")
    items = [("vip", [f"**VIP {vip}", "keepalived VRRPv3 · advert 0.1 s",
                      "held by " + " / ".join(n for n, _, _ in lbs)], "vip", {})]
    items += [(name, machine_lines(name, addr, roles), "lb", {})
              for name, addr, roles in lbs]
    items.append(("haproxy", [
        "**HAProxy 2.6 listeners (on the VIP)",
        ":443 HTTPS — TLS termination (h2)",
        ":80 → 301 redirect to HTTPS",
        "web backend: health check /healthz,",
        "option redispatch · retry-on",
        ":3306 TCP — single-writer DB,",
        "Galera health check on :9200",
        ":6379 TCP — Redis master (sessions)",
        ":8404 stats — admin subnet only",
    ], "lb", {"align": "left"}))
    return stack(diagram, "lb", items, gap=12)


def layout_web_tier(diagram, topology):
    webs = machines_with(topology, "web")
    extra_name, extra_addr = next_machine(*webs[-1][:2])
    sentinels = [name for name, _, _ in machines_with(topology, "web", "lb")]
    items = [(name, machine_lines(name, addr, roles), "web", {}) for name, addr, roles in webs]
    items.append(("web_extra", [f"**{extra_name}… · {extra_addr}…",
                                "autoscaled, enrolled by the Salt reactor"],
                  "web", {"dashed": True}))
    items.append(("app", ["**app: /srv/www/app/releases/<version>",
                          "current → symlink to the live release",
                          "PHP → VIP :3306 (SQL) · VIP :6379 (sessions)"], "web", {}))
    items.append(("redis", ["**Redis + Sentinel — PHP sessions",
                            f"master starts on {webs[0][0]}, replicas on the others",
                            f"{len(sentinels)} sentinels: {', '.join(sentinels)}"], "web", {}))
    items.append(("gluster", ["**GlusterFS replica — uploads (optional)",
                              "bricks on " + ", ".join(n for n, _, _ in webs)],
                  "web", {"dashed": True}))
    return stack(diagram, "web", items, gap=10)


def layout_db_tier(diagram, topology):
    items = [(name, machine_lines(name, addr, roles), "db", {})
             for name, addr, roles in machines_with(topology, "db")]
    items += [(name, machine_lines(name, addr, roles), "db", {})
              for name, addr, roles in machines_with(topology, "arbitrator", "backup")]
    return stack(diagram, "db", items, gap=62)


def add_tier_containers(diagram, bottom):
    """The swimlanes, inserted before their children (drawio needs parents first)."""
    titles = {"lb": "Load balancers", "web": "Web tier", "db": "Database tier"}
    height = bottom + PAD - TOP
    containers = {f"tier_{t}": Box(f"tier_{t}", TIER_X[t], TOP, TIER_W[t], height,
                                   [titles[t]], t, container=True) for t in titles}
    diagram.boxes = {**containers, **diagram.boxes}


def layout_mgmt_row(diagram, topology, top):
    x0, x1 = TIER_X["lb"], TIER_X["db"] + TIER_W["db"]
    names = [m for role in ("master", "monitor") for m in machines_with(topology, role)]
    h = max(box_height(machine_lines(*m)) for m in names)
    diagram.add(Box("tier_mgmt", x0, top, x1 - x0, HEADER + PAD + h + PAD - 5,
                    ["Management & monitoring"], "mgmt", container=True))
    w = (x1 - x0 - PAD * (len(names) + 1)) / len(names)
    for i, (name, addr, roles) in enumerate(names):
        diagram.add(Box(name, x0 + PAD + i * (w + PAD), top + HEADER + PAD - 5, w, h,
                        machine_lines(name, addr, roles), "mgmt",
                        parent="tier_mgmt", align="left"))
    return top + HEADER + PAD + h + PAD - 5


def add_users(diagram):
    vip = diagram.boxes["vip"]
    diagram.add(Box("users", 20, vip.y, 130, vip.h,
                    ["**Users / clients", "browsers, API"], "users"))


def add_legend(diagram):
    x, y, w = 20, 430, 230
    diagram.add(Box("legend", x, y, w, 190, [], "legend"))
    rows = [("user", "user traffic"), ("mgmt", "management / monitoring"),
            ("repl", "replication")]
    diagram.add(Box("legend_title", x + 10, y + 8, w - 20, 18, ["**Legend"], "legend",
                    text_only=True, align="left"))
    for i, (kind, text) in enumerate(rows):
        ly = y + 44 + i * 26
        diagram.connect(kind=kind, src_point=(x + 12, ly), dst_point=(x + 56, ly),
                        arrow_end=(kind == "user"))
        diagram.add(Box(f"legend_{kind}", x + 64, ly - 9, w - 70, 18, [text], "legend",
                        text_only=True, align="left"))
    diagram.add(Box("legend_dashed", x + 12, y + 124, 44, 26, [], "legend", dashed=True))
    diagram.add(Box("legend_dashed_text", x + 64, y + 128, w - 70, 18,
                    ["optional / autoscaled"], "legend", text_only=True, align="left"))
    diagram.add(Box("legend_note", x + 10, y + 156, w - 20, 30,
                    ["Salt minion + Zabbix agent", "on every machine"], "legend",
                    text_only=True, align="left", font_size=11))


def overlap_y(a, b):
    """A y shared by two boxes side by side (middle of their overlap), else a's centre."""
    lo, hi = max(a.y, b.y), min(a.y + a.h, b.y + b.h)
    return (lo + hi) / 2 if hi > lo else a.y + a.h / 2


def horizontal(diagram, src, dst, kind, label):
    """A straight horizontal edge from src's right side to dst's left side."""
    a, b = diagram.boxes[src], diagram.boxes[dst]
    y = overlap_y(a, b)
    return diagram.connect(kind=kind, src=src, dst=dst, exit=(1, (y - a.y) / a.h),
                           entry=(0, (y - b.y) / b.h), label=label)


def add_user_edges(diagram, topology):
    horizontal(diagram, "users", "vip", "user", ["HTTPS :443", "(:80 → 301)"])
    webs = [n for n, _, _ in machines_with(topology, "web")] + ["web_extra"]
    for i, name in enumerate(webs):
        diagram.connect(kind="user", src="haproxy", dst=name, exit=(1, 0.12), entry=(0, 0.5),
                        label=["HTTPS :443 (verified)", "check /healthz"] if i == 0 else [])
    app, hap = diagram.boxes["app"], diagram.boxes["haproxy"]
    y = app.y + app.h * 0.75
    diagram.connect(kind="user", src="app", dst="haproxy", exit=(0, 0.75),
                    entry=(1, (y - hap.y) / hap.h), label=["SQL :3306", "Redis :6379"])
    diagram.connect(kind="user", src="haproxy", dst="redis", exit=(1, 0.88),
                    entry=(0, 0.5), label=["→ role:master"])
    add_db_endpoint_edge(diagram, topology)


def add_db_endpoint_edge(diagram, topology):
    """HAProxy :3306 to the DB tier, over the top of the web tier."""
    lb, db = diagram.boxes["tier_lb"], diagram.boxes["tier_db"]
    first, *others = [n for n, _, _ in machines_with(topology, "db")]
    sx, dx, y = lb.x + lb.w * 0.8, db.x + db.w * 0.5, TOP - 26
    diagram.connect(kind="user", src="tier_lb", dst="tier_db", exit=(0.8, 0), entry=(0.5, 0),
                    points=[(sx, y), (dx, y)],
                    label=[f"TCP :3306 → {first} (writer)"
                           + (f", {', '.join(others)} backup" if others else "")
                           + " · check :9200"])


def add_replication_edges(diagram, topology):
    dbs = [n for n, _, _ in machines_with(topology, "db")]
    arbs = [n for n, _, _ in machines_with(topology, "arbitrator", "backup")]
    chain = dbs + arbs
    for a, b in zip(chain, chain[1:]):
        label = ["wsrep (garbd votes)", "backups: snapshots + binlogs"] if b in arbs \
            else ["Galera wsrep (TLS)", "IST / SST: mariabackup"]
        diagram.connect(kind="repl", src=a, dst=b, exit=(0.5, 1), entry=(0.5, 0),
                        label=label, arrow_start=True)


def add_management_bus(diagram, mgmt_top):
    """One dashed bus between the tiers and the management row instead of 9+ edges."""
    y = mgmt_top - MGMT_GAP / 2
    x0, x1 = TIER_X["lb"] + 10, TIER_X["db"] + TIER_W["db"] - 10
    diagram.connect(kind="mgmt", src_point=(x0, y), dst_point=(x1, y), arrow_end=False,
                    label=["Salt (ZeroMQ 4505/4506) · Zabbix agent (10050) — every machine"])
    for tier in ("tier_lb", "tier_web", "tier_db"):
        box = diagram.boxes[tier]
        diagram.connect(kind="mgmt", src_point=(box.x + box.w * 0.5, y), dst=tier,
                        entry=(0.5, 1))
    for name in (b.id for b in diagram.boxes.values() if b.parent == "tier_mgmt"):
        box = diagram.boxes[name]
        diagram.connect(kind="mgmt", src=name, exit=(0.5, 0),
                        dst_point=(box.x + box.w * 0.5, y), arrow_end=False)


def build(topology):
    diagram = Diagram(CANVAS_W, 0)
    add_title(diagram, topology)
    bottom = max(layout_lb_tier(diagram, topology), layout_web_tier(diagram, topology),
                 layout_db_tier(diagram, topology))
    add_tier_containers(diagram, bottom)
    mgmt_top = bottom + PAD + MGMT_GAP
    diagram.height = layout_mgmt_row(diagram, topology, mgmt_top) + 20
    add_users(diagram)
    add_legend(diagram)
    add_user_edges(diagram, topology)
    add_replication_edges(diagram, topology)
    add_management_bus(diagram, mgmt_top)
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
    colour, width, dash = EDGE_KINDS[edge.kind]
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
    geometry = ET.SubElement(cell, "mxGeometry", relative="1", **{"as": "geometry"})
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


def to_drawio(diagram):
    mxfile = ET.Element("mxfile", host="lemp-ha docs/architecture/diagram.py", type="device")
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


def midpoint(path):
    """The point halfway along a polyline (where drawio puts an edge's label)."""
    segments = list(zip(path, path[1:]))
    lengths = [math.dist(a, b) for a, b in segments]
    remaining = sum(lengths) / 2
    for (a, b), length in zip(segments, lengths):
        if remaining <= length and length:
            t = remaining / length
            return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
        remaining -= length
    return path[-1]


def svg_edge(svg, labels, diagram, edge):
    colour, width, dash = EDGE_KINDS[edge.kind]
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
        x, y = midpoint(path)
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


def main():
    diagram = build(load_topology())
    DRAWIO_OUT.write_text(to_drawio(diagram), encoding="utf-8")
    SVG_OUT.write_text(to_svg(diagram), encoding="utf-8")
    print(f"wrote {DRAWIO_OUT.name} and {SVG_OUT.name} "
          f"({len(diagram.boxes)} boxes, {len(diagram.edges)} edges)")


if __name__ == "__main__":
    main()
