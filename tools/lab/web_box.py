#!/usr/bin/env python3
"""What the lab's boxes carry, read from the states themselves.

    web_box.py plan [ROLE]      JSON {"packages": [...], "services": [...]}
                                of the role's highstate (default: web)
    web_box.py plan-sls SLS     the same for one sls (and what it includes),
                                e.g. `common`, which every machine applies

The plain box lemp-ha/debian12 (tools/lab/build-box.sh `build_box`) is
Debian 12 + salt + the packages of `common` (plan-sls common), their
services disabled: every machine's first highstate then spends no time
installing them (20-27 s per machine and tier in `./lab up`).

The box lemp-ha/debian12-web (tools/lab/build-box.sh) is the plain box with
the packages of the web role installed and their services disabled, as a
baked AMI would be: a pool machine's first highstate then only configures.
No list is kept by hand: this renders the role's highstate on this host
(`salt-call --local state.show_lowstate`, Salt from the test virtualenv,
in a throwaway root, with throwaway lab secrets), as a member of the role,
and takes

* every package a ``pkg.installed`` state names (``name`` or ``pkgs``);
* every service a ``service.running`` state enables: the box keeps them
  disabled, the highstate enables and starts them once configured.

Run with the test virtualenv's Python (it has Salt). The pure functions
are unit-tested (tests/unit/test_web_box.py).
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "lab"))
sys.path.insert(0, str(REPO / "_modules"))

# The folders the lab master exposes beside salt/ (tools/lab/provision/salt.sh).
EXTRAS = ("orch", "reactor", "_modules", "_states", "app")

# The grains of a lab machine (an LXC container, as Salt 3008 reports it),
# set over this host's own: a box is for the lab's machines, and what some
# states install depends on the grains. `common.time` installs chrony only
# where the machine keeps its own clock (_modules/lemp_time.py): never in
# the lab's containers, always on a VM or bare metal. Rendered with the
# grains of the host running the build (a VM in CI, a container here), the
# plan would carry chrony, or not, depending on where the box was built.
LAB_GRAINS = {"virtual": "container", "virtual_subtype": "LXC"}


def packages_of(lowstate):
    """Sorted names of the packages the ``pkg.installed`` chunks install
    (``pkgs`` entries may be names or {name: version})."""
    names = set()
    for chunk in lowstate:
        if not isinstance(chunk, dict) or chunk.get("state") != "pkg" or chunk.get("fun") != "installed":
            continue
        if chunk.get("pkgs"):
            for item in chunk["pkgs"]:
                names.update(item.keys() if isinstance(item, dict) else [item])
        else:
            names.add(chunk["name"])
    return sorted(str(name) for name in names)


def services_of(lowstate):
    """Sorted names of the services ``service.running`` chunks enable."""
    return sorted({str(chunk["name"]) for chunk in lowstate
                   if isinstance(chunk, dict) and chunk.get("state") == "service"
                   and chunk.get("fun") == "running" and chunk.get("enable")})


def render_errors(output):
    """The render errors of a `salt-call --out=json` lowstate, or []."""
    data = output.get("local")
    return [item for item in data if isinstance(item, str)] if isinstance(data, list) else [str(data)]


def smallest_pillar_machine(topology):
    """The machine of the topology whose roles give it the fewest pillar
    files and secrets (the first in the topology's order among equals):
    the cheapest render of what every machine applies."""
    machines = topology["machines"]
    if not machines:
        raise SystemExit("web_box: the topology has no machines")
    return min(machines, key=lambda name: len(machines[name].get("pillars", []))
               + len(machines[name].get("secrets", [])))


def minion_config(root, member):
    return {
        "id": member, "file_client": "local", "root_dir": str(root), "grains": dict(LAB_GRAINS),
        "file_roots": {"base": [str(REPO / "salt"), str(root / "extras")]},
        "pillar_roots": {"base": [str(REPO / "pillar"), str(root / "secrets")]},
        "module_dirs": [str(root / "extras")], "runner_dirs": [str(REPO / "_runners")],
        "enable_fqdns_grains": False, "lemp_ha_deployed_record": str(root / "deployed.json"),
    }


def load_topology():
    import lemp_topology

    path = os.environ.get("LEMP_HA_TOPOLOGY") or str(REPO / "pillar" / "topology.yaml")
    return path, lemp_topology.load(path)


def render(topology_path, member, function, what):
    """`salt-call --local FUNCTION` (state.show_lowstate, state.show_low_sls
    SLS) as the lab machine MEMBER: its lowstate chunks."""
    import lab_secrets
    import yaml

    with tempfile.TemporaryDirectory(prefix="lemp-ha-web-box-") as tmp:
        root = pathlib.Path(tmp)
        (root / "extras").mkdir()
        for folder in EXTRAS:
            if (REPO / folder).exists():
                (root / "extras" / folder).symlink_to(REPO / folder)
        # Throwaway secrets: the render needs values, the box gets none.
        folder = lab_secrets.generate(root / "state", topology_path, REPO / "pillar" / "secrets.spec.yaml")
        (root / "secrets" / "minions").mkdir(parents=True)
        for item in (folder / "minions").glob("*.yaml"):
            (root / "secrets" / "minions" / f"{item.stem}.sls").write_text(item.read_text())
        (root / "minion").write_text(yaml.safe_dump(minion_config(root, member)))
        salt_call = pathlib.Path(sys.executable).parent / "salt-call"
        proc = subprocess.run([str(salt_call), "-c", str(root), "--local", "--out=json", "--log-level=quiet",
                               *function], capture_output=True, text=True, timeout=600)
        try:
            output = json.loads(proc.stdout)
        except ValueError:
            raise SystemExit(f"web_box: rendering {what} failed: {(proc.stderr or proc.stdout)[-2000:]}")
    errors = render_errors(output)
    if errors:
        raise SystemExit(f"web_box: {what} does not render: {errors[0][:2000]}")
    return output["local"]


def lowstate(role="web"):
    """The role's highstate, as lowstate chunks, rendered for its first member."""
    topology_path, topology = load_topology()
    members = [m["name"] for m in topology["roles"].get(role, {}).get("members", [])]
    if not members:
        raise SystemExit(f"web_box: no machine holds role {role} in {topology_path}")
    return render(topology_path, members[0], ["state.show_lowstate"], f"the {role} highstate")


def sls_lowstate(sls):
    """One sls (with what it includes), as lowstate chunks, rendered for the
    lab machine with the smallest pillar. For `common`, that is what every
    machine installs: it applies to all of them, its packages do not depend
    on the roles (only its configuration does: firewall rules, log files),
    and the one that depends on the machine (chrony, by grains) is decided
    by the lab's grains (LAB_GRAINS), the same on every lab machine."""
    topology_path, topology = load_topology()
    return render(topology_path, smallest_pillar_machine(topology), ["state.show_low_sls", sls],
                  f"the sls {sls}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plan"] and len(argv) <= 2:
        chunks = lowstate(argv[1] if len(argv) > 1 else "web")
    elif argv[:1] == ["plan-sls"] and len(argv) == 2:
        chunks = sls_lowstate(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps({"packages": packages_of(chunks), "services": services_of(chunks)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
