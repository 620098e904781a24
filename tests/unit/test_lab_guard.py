"""tests/lab/lab_guard.py: the lab tests' hooks, run by a real pytest on a
small suite (the hooks only make sense inside a pytest run)."""

import os
import pathlib
import subprocess
import sys

import pytest

# a pytest plugin of the lab tests, beside them (the venv runs it, not the host's python3)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lab"))
import lab_guard  # noqa: E402

GUARD_DIR = pathlib.Path(lab_guard.__file__).parent


def run_suite(tmp_path, deadline=None):
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(GUARD_DIR)!r})\n"
        "from lab_guard import pytest_runtest_makereport, pytest_sessionstart, pytest_terminal_summary  # noqa: F401\n")
    (tmp_path / "test_suite.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('the lab is gone')\n\n"
        "def test_one():\n    assert 1 + 1 == 3, 'arithmetic\\nacross lines'\n\n"
        "def test_two(broken):\n    pass\n\n"
        "def test_three():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != lab_guard.DEADLINE_ENV}
    if deadline is not None:
        env[lab_guard.DEADLINE_ENV] = deadline
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_each_failure_is_named_with_its_reason_as_it_happens(tmp_path):
    out = run_suite(tmp_path).stdout
    lines = out.splitlines()
    one = next(i for i, line in enumerate(lines) if line.startswith("CALL FAILED test_suite.py::test_one: "))
    assert "assert 1 + 1 == 3" in out or "arithmetic across lines" in lines[one]
    two = next(i for i, line in enumerate(lines) if line.startswith("SETUP FAILED test_suite.py::test_two: "))
    assert "RuntimeError: the lab is gone" in lines[two]
    summary = next(i for i, line in enumerate(lines) if "short test summary" in line)
    assert one < two < summary  # printed before pytest's own report at the end
    assert "1 passed" in out  # the run goes on after a failure


def test_no_test_starts_after_the_deadline_and_pytest_still_reports(tmp_path):
    proc = run_suite(tmp_path, deadline="0")
    assert proc.returncode == 2, proc.stdout  # interrupted: ./lab test fails
    assert "past their deadline of 0 s" in proc.stdout
    assert "test_two" not in proc.stdout.split("CALL FAILED")[0]
    assert "1 failed" in proc.stdout and "passed" not in proc.stdout


def test_a_deadline_that_is_not_a_number_of_seconds_is_refused():
    assert lab_guard.deadline_seconds({}) == lab_guard.DEFAULT_DEADLINE
    assert lab_guard.deadline_seconds({lab_guard.DEADLINE_ENV: " 90 "}) == 90
    for bad in ("soon", "-5"):
        with pytest.raises(pytest.UsageError, match=lab_guard.DEADLINE_ENV):
            lab_guard.deadline_seconds({lab_guard.DEADLINE_ENV: bad})


def test_the_time_per_module_is_summed_at_the_end(tmp_path):
    out = run_suite(tmp_path).stdout
    summary = out.split("lab test time per module")[1]
    assert "test_suite.py" in summary and "s in all" in summary


def test_module_times_are_longest_first_with_their_share():
    lines = lab_guard.module_times({"a.py": 10.0, "b.py": 30.0}, 40.0)
    assert lines[0].endswith("b.py") and "75.0%" in lines[0]
    assert lines[-1].strip() == "40 s in all"
