#!/usr/bin/env python3
"""Name the cause of a failed `vagrant up`, per machine, with the fix.

    vagrant_errors.py VAGRANT_UP_LOG

reads what `vagrant up --parallel` printed (./lab up keeps it in
/var/lib/lemp-ha/vagrant-up.log) and prints, for each machine that failed,
the lines that hold the error and what to do about it. Exit status 1 when
it found an error, 0 when it found none.

Vagrant itself says only "There was an error executing [lxc-create ...]":
the command's own error output is what names the cause. The Vagrantfile
makes vagrant-lxc print it after that sentence ("The command's error
output:"); this script keeps its meaningful lines and drops the noise of
`lxc-create -B best`, which tries btrfs, zfs and lvm before a plain folder.
"""

import re
import sys

MACHINE_BLOCK = re.compile(r"^An error occurred while executing the action on the '([^']+)'$")
ERROR_OUTPUT = "The command's error output:"
# `lxc-create -B best` tries these storage back ends first; their failures
# are expected on a plain filesystem and never the cause.
BACKINGSTORE_NOISE = re.compile(r"btrfs|zfs|lvm|run_command_internal|Unpacking the rootfs")
VAGRANT_BOILERPLATE = (
    "For more information on the failure",
    "the environment variable VAGRANT_LOG",
    "machine. Please handle this error then try again:",
)

# (pattern over the error lines, fix); the first that matches names the fix.
FIXES = (
    (re.compile(r'Failed to open file "(/usr/share/lxc/config/[^"]+)"'),
     "LXC's shared config {0} is missing: apt-get install lxc-templates "
     "(./lab up installs it with the other host prerequisites, tools/lab/prereqs.sh)"),
    (re.compile(r'Failed to open file "([^"]+)"'),
     "a file LXC reads is missing: {0}; `dpkg -S {0}` on a machine that has it names the package"),
    (re.compile(r"(?:already exists|Container already exists)"),
     "a container of that name is left over: ./lab down && ./lab up"),
    (re.compile(r"Address already in use|Cannot assign requested address"),
     "the lab's address or port is taken on this host: ./lab down, then ./lab up"),
    (re.compile(r"SSH command responded with a non-zero exit status"),
     "the provisioner failed inside the machine: see its lines above, then ./lab up again (it repairs)"),
)
GENERIC_FIX = "read the lines above; ./lab up again repairs a half-up lab, or ./lab down && ./lab up starts afresh"


def machine_errors(text):
    """{machine: [error lines]} for every machine `vagrant up` names as failed,
    in the order Vagrant lists them."""
    errors, current = {}, None
    for raw in text.splitlines():
        line = raw.rstrip()
        found = MACHINE_BLOCK.match(line)
        if found:
            current = found.group(1)
            errors[current] = []
            continue
        if current is None or not line.strip():
            continue
        if line == ERROR_OUTPUT or line.startswith(VAGRANT_BOILERPLATE) or BACKINGSTORE_NOISE.search(line):
            continue
        errors[current].append(line.strip())
    return errors


def fix_for(lines):
    joined = "\n".join(lines)
    for pattern, fix in FIXES:
        found = pattern.search(joined)
        if found:
            return fix.format(*found.groups())
    return GENERIC_FIX


def report(text):
    """The lines ./lab up prints for a failed `vagrant up`: per machine, its
    error lines and the fix. Empty when the log names no failed machine."""
    out = []
    for machine, lines in machine_errors(text).items():
        out.append(f"{machine}:")
        out.extend(f"    {line}" for line in lines[-12:])
        out.append(f"  fix: {fix_for(lines)}")
    return "\n".join(out)


def main(argv):
    if len(argv) != 2:
        print("usage: vagrant_errors.py VAGRANT_UP_LOG", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8", errors="replace") as handle:
        text = report(handle.read())
    if text:
        print(text)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
