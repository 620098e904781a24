"""Formulas and orchestrations read the derived topology
(topology.roles.<role>.members, topology.master, topology.garbd, ...); none
walks the machines in Jinja to find a role."""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]
SCOPE = ["salt", "pillar", "orch"]
WALK = re.compile(
    r"for .* in .*("
    r"topology\.machines"                   # topology.machines | dictsort
    r"|topology\.get\(['\"]machines['\"]"   # (topology.get('machines') or {})
    r"|topology:machines['\"]"              # salt['pillar.get']('topology:machines', {})
    r")"
)


def templates():
    for entry in SCOPE:
        path = REPO / entry
        for found in sorted(path.rglob("*")) if path.is_dir() else [path]:
            # Python pillar files (#!py) build the derived topology itself.
            if found.suffix in (".sls", ".jinja") and not found.read_text().startswith("#!py"):
                yield found


def test_no_jinja_walks_the_machines_to_find_a_role():
    walks = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in templates()
             for number, line in enumerate(path.read_text().splitlines(), 1) if WALK.search(line)]
    assert not walks, ("read topology.roles.<role>.members, topology.master, topology.tiers or topology.garbd "
                       "instead of walking topology.machines:\n" + "\n".join(walks))


def test_the_check_sees_a_walk():
    assert WALK.search("{%- for name, machine in topology.machines | dictsort if 'lb' in machine.roles %}")
    assert WALK.search("{%- for n, m in salt['pillar.get']('topology:machines', {}) | dictsort %}")
    assert not WALK.search("{%- for sls in salt['pillar.get']('topology:machines:' ~ grains['id'] ~ ':states') %}")
