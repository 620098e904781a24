"""The lab's boxes carry what the states install, read from the states
themselves (tools/lab/web_box.py), with their services off: the plain box
the packages of `common`, the baked web box those of the web role."""

import json
import pathlib
import subprocess
import sys

import web_box  # tests/conftest.py puts tools/lab on the path

REPO = pathlib.Path(__file__).resolve().parents[2]

LOWSTATE = [
    {"state": "pkg", "fun": "installed", "name": "nginx-packages-installed", "pkgs": ["nginx"]},
    {"state": "pkg", "fun": "installed", "name": "redis-server"},
    {"state": "pkg", "fun": "installed", "name": "webapp-app-package", "pkgs": [{"wordpress": "6.1+dfsg1-1"}, "php"]},
    {"state": "pkg", "fun": "purged", "name": "apache2"},
    {"state": "service", "fun": "running", "name": "nginx", "enable": True},
    {"state": "service", "fun": "running", "name": "oneshot"},
    {"state": "service", "fun": "dead", "name": "glusterd", "enable": False},
    {"state": "file", "fun": "managed", "name": "/etc/nginx/nginx.conf"},
]


def test_packages_are_every_name_pkg_installed_states_install():
    assert web_box.packages_of(LOWSTATE) == ["nginx", "php", "redis-server", "wordpress"]


def test_services_are_those_the_states_enable():
    assert web_box.services_of(LOWSTATE) == ["nginx"]


def test_a_render_error_is_reported():
    assert web_box.render_errors({"local": ["Rendering SLS 'base:x' failed: boom"]}) == [
        "Rendering SLS 'base:x' failed: boom"]
    assert web_box.render_errors({"local": LOWSTATE}) == []


def rendered_plan(*args):
    """`web_box.py ARGS`, rendered for real with Salt (salt-call --local, a
    throwaway root and secrets, as a lab (LXC) machine): its plan."""
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "lab" / "web_box.py"), *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_plan_comes_from_the_web_roles_highstate():
    plan = rendered_plan("plan")
    for package in ("nginx", "php8.2-fpm", "redis-server", "redis-sentinel", "glusterfs-client", "zabbix-agent2"):
        assert package in plan["packages"], plan
    for service in ("nginx", "php8.2-fpm", "redis-server", "glusterd"):
        assert service in plan["services"], plan


def test_the_render_is_a_lab_machines_whatever_host_builds_the_box(tmp_path):
    # chrony (common.time) is installed by grains: the box is for LXC containers
    config = web_box.minion_config(tmp_path, "salt1")
    assert config["grains"] == {"virtual": "container", "virtual_subtype": "LXC"}
    assert config["id"] == "salt1"


def test_the_sls_is_rendered_for_the_machine_with_the_smallest_pillar():
    topology = {"machines": {
        "web1": {"pillars": ["web", "app"], "secrets": ["app_db"]},
        "lb1": {"pillars": ["lb"], "secrets": ["tls_vip"]},
        "lb2": {"pillars": ["lb"], "secrets": ["tls_vip"]},
        "salt1": {"pillars": ["app", "deployed", "watchdog"]},
    }}
    assert web_box.smallest_pillar_machine(topology) == "lb1"


def test_plan_sls_needs_one_sls():
    assert web_box.main(["plan-sls"]) == 2
    assert web_box.main(["plan", "web", "extra"]) == 2


def test_the_plain_boxs_plan_is_what_common_installs_on_every_lab_machine():
    plan = rendered_plan("plan-sls", "common")
    for package in ("openssh-server", "needrestart", "nftables", "rsyslog", "rsyslog-relp", "zabbix-agent2"):
        assert package in plan["packages"], plan
    # chrony only where the machine keeps its own clock, never in the lab's
    # containers; nothing of a role
    for package in ("chrony", "nginx", "mariadb-server", "haproxy"):
        assert package not in plan["packages"], plan
    assert plan["services"] == ["nftables", "rsyslog", "ssh", "zabbix-agent2"]
