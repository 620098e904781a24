"""A fresh machine: what the lab needs is found in the code, and a failed
`vagrant up` names its cause."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(REPO / "tools" / "lab"))

import host_requirements  # noqa: E402
import vagrant_errors  # noqa: E402

FAILED_UP = DATA / "vagrant-up-lxc-create-failed.log"


def test_a_failed_vagrant_up_names_the_lxc_error_and_the_fix_per_machine():
    errors = vagrant_errors.machine_errors(FAILED_UP.read_text())
    assert list(errors) == ["salt1", "lb1"]
    for machine, lines in errors.items():
        text = "\n".join(lines)
        assert 'Failed to open file "/usr/share/lxc/config/debian.common.conf"' in text
        assert f"Failed to create container lemp-ha-{machine}" in text
        # lxc-create -B best tries btrfs, zfs and lvm first: not the cause
        assert "btrfs" not in text and "zfs" not in text
    assert "apt-get install lxc-templates" in vagrant_errors.fix_for(errors["salt1"])


@pytest.mark.skipif(os.geteuid() != 0, reason="./lab runs as root")
def test_lab_up_whose_vagrant_up_failed_prints_the_error_lines_and_stops(tmp_path):
    # The function ./lab up calls after `vagrant up`, on a real failed run's output.
    # as ./lab runs it: set -euo pipefail
    script = (f"set -euo pipefail; source {REPO}/tools/lab/lib.sh; source {REPO}/tools/lab/cmd_up.sh; "
              f"report_vagrant_failure {FAILED_UP} 'salt1 lb1'")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "salt1:" in proc.stderr and "lb1:" in proc.stderr
    assert 'lxc-create: lemp-ha-salt1: ../src/lxc/parse.c' in proc.stderr
    assert "fix: LXC's shared config /usr/share/lxc/config/debian.common.conf is missing" in proc.stderr
    assert "machine(s) did not come up: salt1 lb1" in proc.stderr


def test_a_log_without_failed_machines_reports_nothing():
    assert vagrant_errors.report("==> web1: Machine booted and ready!\n") == ""


def test_shell_scan_finds_commands_not_functions_keywords_or_case_labels():
    text = """
f() { lxc-info -n x; }
case "$cmd" in
  up | box) need_root; f ;;
esac
bad=$(vagrant status --machine-readable | awk -F, '{print $2}')
X=1 timeout 5 debootstrap --variant=minbase a b \\
  || die "debootstrap failed"
cat >"$f" <<EOF
not-a-command here
EOF
lab_exec web1 salt-run state.event
files=$(find salt pillar \\
          -type d ! -name x | sort)
"""
    found = host_requirements.shell_commands(text, functions={"f", "need_root", "die", "lab_exec"})
    assert {"lxc-info", "vagrant", "awk", "debootstrap", "cat", "find", "sort"} <= found
    # a continued line goes on with the arguments: its "d" of "-type d" is no command
    assert not found & {"f", "up", "box", "need_root", "not-a-command", "salt-run", "case", "d"}


def test_python_scan_finds_started_programs():
    text = 'import subprocess, shutil\nsubprocess.run(["ip", "-o"])\nshutil.which("ab")\nhost_tool("haproxy")\n'
    assert host_requirements.python_commands(text) == {"ip", "ab", "haproxy"}


def test_the_lab_requirements_come_from_the_code():
    need = host_requirements.requirements()
    # the box's lxc-config include: the file a fresh machine lacked
    assert "/usr/share/lxc/config/debian.common.conf" in need["files"]
    assert {"lxc-create", "lxc-attach", "vagrant", "debootstrap", "apt-cacher-ng", "iptables", "haproxy"} \
        <= set(need["commands"])
    assert "yaml" in need["python_modules"]



def test_every_module_the_hosts_python3_imports_is_a_prerequisite_package():
    # The fresh-machine check finds a missing one only after a 15-minute
    # debootstrap (stop 26: a pytest plugin kept in tools/lab made the host's
    # python3 need pytest); this finds it in the fast tests.
    text = (REPO / "tools" / "lab" / "prereqs.sh").read_text()
    packages = set()
    for name in ("LAB_HOST_PACKAGES", "TEST_HOST_PACKAGES"):
        packages |= set(re.search(rf'^{name}="([^"]*)"', text, re.M).group(1).split())
    debian_name = {"yaml": "python3-yaml"}
    for module in host_requirements.requirements()["python_modules"]:
        package = debian_name.get(module, f"python3-{module}")
        assert package in packages, (f"the host's python3 imports {module}: add {package} to tools/lab/prereqs.sh, "
                                     "or keep the importing file out of tools/lab (pytest plugins go in tests/)")
