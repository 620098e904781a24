"""docs/architecture: the committed diagram is what the code deploys today.

docs/architecture/diagram.py draws it from pillar/topology.yaml, the states
of pillar/roles.yaml and pillar/ports.yaml. These tests regenerate the drawio
and the SVG (no Chromium needed) and compare; the PNG is checked through the
SVG sha256 it carries, not its pixels."""

import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from by_path import REPO, load

ARCH = REPO / "docs" / "architecture"
HOW = "run python3 docs/architecture/diagram.py (needs chromium for the PNG) and commit the result"


@pytest.fixture(scope="module")
def diagram():
    return load("architecture_diagram", "docs/architecture/diagram.py")


def svg_texts(path):
    """Every text line of an SVG, as a reader sees it."""
    return [t.text for t in ET.parse(path).iter("{http://www.w3.org/2000/svg}text") if t.text]


def regenerate(diagram, out, **paths):
    diagram.generate(out, png=False, **paths)
    return out / diagram.SVG_NAME, out / diagram.DRAWIO_NAME


def test_committed_drawio_and_svg_are_what_the_code_draws(diagram, tmp_path):
    regenerate(diagram, tmp_path)
    for name in (diagram.DRAWIO_NAME, diagram.SVG_NAME):
        committed = (ARCH / name).read_text(encoding="utf-8")
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        assert fresh == committed, f"docs/architecture/{name} is stale (the topology, roles, ports or " \
                                   f"diagram.py changed): {HOW}"


def test_committed_png_is_a_rendering_of_the_committed_svg(diagram):
    svg = (ARCH / diagram.SVG_NAME).read_text(encoding="utf-8")
    stamped = diagram.png_text((ARCH / diagram.PNG_NAME).read_bytes()).get(diagram.PNG_HASH_KEY)
    assert stamped == diagram.sha256(svg), f"docs/architecture/{diagram.PNG_NAME} was not rendered from " \
                                           f"the committed {diagram.SVG_NAME}: {HOW}"
    drawio = ET.parse(ARCH / diagram.DRAWIO_NAME).getroot()
    assert drawio.get("svgSha256") == diagram.sha256(svg), HOW


def test_every_role_and_machine_of_the_platform_is_drawn(diagram):
    text = "\n".join(svg_texts(ARCH / diagram.SVG_NAME))
    roles = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text(encoding="utf-8"))
    topology = yaml.safe_load((REPO / "pillar" / "topology.yaml").read_text(encoding="utf-8"))
    # a role is named in its machines' headers ("db1 · 10.77.0.31 · db", "· web_pool: web3 …")
    missing = [r for r in roles if not re.search(rf"(· |, ){re.escape(r)}(,|:|$)", text, re.M)]
    missing += [f"{name} · {m['address']}" for name, m in topology["machines"].items()
                if f"{name} · {m['address']}" not in text]
    pool = list(topology["scaling"]["web"]["pool"])
    missing += [name for name in (pool[0], pool[-1]) if name not in text]
    for address in (topology["network"]["vip"], topology["network"]["internal_vip"]):
        if address not in text:
            missing.append(address)
    assert not missing, f"not in docs/architecture/lemp-ha.svg: {', '.join(missing)}"


def test_a_state_no_role_applies_has_no_label_in_the_picture(diagram, tmp_path):
    arbiter = diagram.STATE_LABELS["glusterfs.arbiter"]
    assert arbiter in svg_texts(ARCH / diagram.SVG_NAME)
    roles = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text(encoding="utf-8"))
    roles["arbitrator"]["states"].remove("glusterfs.arbiter")
    changed = tmp_path / "roles.yaml"
    changed.write_text(yaml.safe_dump(roles), encoding="utf-8")
    svg, drawio = regenerate(diagram, tmp_path, roles=changed)
    assert arbiter not in svg_texts(svg)
    assert arbiter not in drawio.read_text(encoding="utf-8")
    # what the arbitrator still applies is still there
    assert diagram.STATE_LABELS["garbd"] in svg_texts(svg)


def test_a_state_without_a_label_stops_the_generation(diagram, tmp_path):
    roles = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text(encoding="utf-8"))
    roles["lb"]["states"].append("newthing")
    changed = tmp_path / "roles.yaml"
    changed.write_text(yaml.safe_dump(roles), encoding="utf-8")
    with pytest.raises(diagram.DiagramError, match="'newthing'.*STATE_LABELS"):
        regenerate(diagram, tmp_path, roles=changed)
    assert not (tmp_path / diagram.SVG_NAME).exists()


def test_the_png_stamp_survives_a_round_trip(diagram):
    png = (ARCH / diagram.PNG_NAME).read_bytes()
    again = diagram.with_png_text(png, diagram.PNG_HASH_KEY, "0" * 64)
    assert diagram.png_text(again)[diagram.PNG_HASH_KEY] == "0" * 64
    assert len([1 for kind, _ in diagram.png_chunks(again) if kind == b"tEXt"]) == \
        len([1 for kind, _ in diagram.png_chunks(png) if kind == b"tEXt"])
