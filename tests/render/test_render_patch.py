"""orch.patch renders (issue #13 item 7): on the render master nothing runs
HAProxy or Galera and some machines have no minion, so the platform is not
healthy and the plan is a single refusal naming why, before any step that
touches a machine; a bad pillar is refused naming its key. The runbook
itself, from healthy answers: tests/unit/test_patch_orch_render.py."""

import json

from test_render_scaling import plan


def test_an_unhealthy_platform_is_refused_before_any_step(salt_run_cli):
    ret, steps = plan(salt_run_cli, "patch", {"tiers": ["lb", "web"], "restart": "always"})
    assert ret.returncode == 0, ret
    assert list(steps) == ["patch-refused-nothing-was-touched"], steps
    text = json.dumps(steps)
    assert "refusing to start, the platform is not healthy" in text
    assert "lb2 does not answer" in text, text


def test_a_bad_tier_is_refused_naming_the_pillar_key(salt_run_cli):
    ret, steps = plan(salt_run_cli, "patch", {"tiers": ["web", "master"]})
    assert list(steps) == ["patch-refused-nothing-was-touched"], steps
    assert "pillar tiers: 'master' is not patched by orch.patch" in json.dumps(steps)
