#!/usr/bin/env python3
"""Print one line per minion job return from `salt-run state.event` output.

The orchestration itself answers only at its end; this shows that work is
going on, minion by minion, while it runs.
"""

import json
import sys
import time


def describe(tag, data):
    """A progress line for a job-return event, or None for other events."""
    if "/ret/" not in tag or not isinstance(data, dict):
        return None
    fun = data.get("fun", "")
    # The long steps are state runs; the short calls (and the look-ups the
    # orchestrations make while they are rendered) would only be noise.
    if not fun.startswith("state."):
        return None
    args = data.get("fun_args") or []
    what = fun + (f" {args[0]}" if args and isinstance(args[0], str) else "")
    ret = data.get("return")
    ok = data.get("success", True) and data.get("retcode", 0) == 0
    changed = ""
    if isinstance(ret, dict):
        states = [s for s in ret.values() if isinstance(s, dict) and "result" in s]
        if states:
            ok = ok and all(s.get("result") is not False for s in states)
            changed = f", {sum(1 for s in states if s.get('changes'))} changed"
    return f"    {time.strftime('%H:%M:%S')} {data.get('id', '?')}: {what} {'done' if ok else 'FAILED'}{changed}"


def main():
    for line in sys.stdin:
        tag, _, payload = line.partition("\t")
        if not payload:
            tag, _, payload = line.partition(" ")
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        text = describe(tag.strip(), data)
        if text:
            print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
