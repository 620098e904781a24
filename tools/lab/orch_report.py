#!/usr/bin/env python3
"""Summarise a `salt-run --out=json state.orchestrate` result for a human.

Prints one line per orchestration step and, for a failed step, the minion and
the state that failed with Salt's comment, so that nobody has to dig through
pages of highstate output. Exits 1 when any step failed, and prints the
total number of changes (a second run of orch.site must report 0).
"""

import json
import sys


def _state_failures(minion, ret):
    """(minion, state id, comment) for every failed state of one minion."""
    if isinstance(ret, list):  # render errors come back as a list of strings
        return [(minion, "(render)", "; ".join(map(str, ret)))]
    if not isinstance(ret, dict):
        return [(minion, "(return)", str(ret))]
    failed = []
    for key, item in ret.items():
        if isinstance(item, dict) and item.get("result") is False:
            state_id = item.get("__id__") or key.split("_|-")[1]
            comment = str(item.get("comment", "")).strip()
            output = (item.get("changes") or {})
            # A failed command says why on its stderr, not in the comment.
            tail = (output.get("stderr") or output.get("stdout") or "").strip().splitlines()[-3:]
            if tail:
                comment += " | " + " / ".join(tail)
            if len(comment) > 600:  # retried states repeat themselves
                comment = "... " + comment[-600:]
            failed.append((minion, state_id, comment))
    return failed


def _count_changes(ret):
    if not isinstance(ret, dict):
        return 0
    return sum(1 for item in ret.values() if isinstance(item, dict) and item.get("changes"))


def summarise(doc):
    """Return (lines, failed, changes) for an orchestration result."""
    data = doc.get("data", doc) if isinstance(doc, dict) else {}
    if not isinstance(data, dict) or not data:
        return [f"orchestration returned nothing usable: {doc!r}"[:2000]], True, 0
    steps = next(iter(data.values()))
    if not isinstance(steps, (dict, list)):
        return [f"orchestration error: {steps}"], True, 0
    if isinstance(steps, list):
        return ["orchestration error: " + "; ".join(map(str, steps))], True, 0
    lines, failed, changes = [], False, 0
    ordered = sorted(steps.values(), key=lambda s: s.get("__run_num__", 0) if isinstance(s, dict) else 0)
    for step in ordered:
        if not isinstance(step, dict):
            continue
        name = step.get("__id__") or step.get("name", "?")
        ok = step.get("result")
        ret = (step.get("changes") or {}).get("ret")
        step_changes = 0
        if isinstance(ret, dict):
            for minion, minion_ret in ret.items():
                step_changes += _count_changes(minion_ret)
        changes += step_changes
        mark = "ok " if ok else ("-- " if ok is None else "FAIL")
        lines.append(f"  {mark} {name}" + (f"  ({step_changes} changed)" if step_changes else ""))
        if ok is False:
            failed = True
            found = []
            if isinstance(ret, dict):
                for minion, minion_ret in ret.items():
                    found += _state_failures(minion, minion_ret)
            for minion, state_id, comment in found:
                lines.append(f"       minion {minion}, state {state_id}: {comment}")
            if not found:
                lines.append(f"       {str(step.get('comment', '')).strip()}")
    lines.append(f"  total changes: {changes}")
    return lines, failed, changes


def main(argv):
    path = argv[1]
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        doc = json.loads(text) if text.strip() else {}
    except (OSError, ValueError) as exc:
        print(f"  could not read the orchestration result {path}: {exc}", file=sys.stderr)
        return 1
    lines, failed, _ = summarise(doc)
    print("\n".join(lines), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
