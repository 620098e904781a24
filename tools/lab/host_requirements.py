#!/usr/bin/env python3
"""What the lab and the tests need on the host, found in the code itself.

    host_requirements.py list          the requirements, as JSON
    host_requirements.py check ROOT    check them inside a root file system

A hand-kept list would forget the next dependency, so this reads the code:

* commands: every command the lab's bash runs (tools/lab/*.sh and ./lab, at
  command positions), and every program the Python code starts
  (subprocess calls with a literal first word, ``shutil.which("X")`` and
  ``host_tool("X")``) in tests/, tools/lab/ and bench/;
* files: every ``lxc.include`` of the box's lxc-config (build-box.sh), and
  the template and key files the lab takes from Vagrant's gems;
* Python modules: what the scripts run with the host's /usr/bin/python3
  import beyond the standard library;
* Vagrant plugins: the providers the lab and the tests use.

`check ROOT` looks for all of them in ROOT (a fresh Debian root where the
prerequisites were installed, see tools/lab/fresh_root.sh) and names each one
missing. Exit status 1 when anything is missing.
"""

import ast
import glob
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
LAB = REPO / "tools" / "lab"

# Shell words that are not commands found on PATH.
SHELL_WORDS = {
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "in",
    "function", "select", "time", "!", "{", "}", "[[", "]]", "[", "]", ":", ".", "source", "alias",
    "break", "builtin", "cd", "command", "continue", "declare", "echo", "eval", "exec", "exit",
    "export", "false", "getopts", "hash", "kill", "let", "local", "printf", "pwd", "read", "readonly",
    "return", "set", "shift", "shopt", "test", "trap", "true", "type", "typeset", "ulimit", "umask",
    "unset", "wait", "mapfile", "jobs", "disown",
}
# Tokens after which the next word is in command position.
SEPARATORS = {";", "&&", "||", "|", "(", ")", "&", "then", "do", "else", "elif", "if", "while", "until", "!", "{"}
# Commands that run the command after them (when they are in command position).
PREFIXES = {"exec", "time", "command", "sudo", "env", "xargs", "timeout", "nice"}
# Files of Vagrant's gems the lab uses (build-box.sh's vagrant_insecure_key,
# vagrant-lxc's container template).
VAGRANT_GEM_FILES = (
    "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub",
    "/usr/share/rubygems-integration/all/gems/vagrant-lxc-*/scripts/lxc-template",
)
# Commands the lab calls only where they exist, never needed: systemctl only
# matters on a host booted with systemd (a chroot or a container has nothing
# to disable).
OPTIONAL_COMMANDS = {"systemctl"}
# Imported only when a module runs inside Salt (lemp_topology's check()).
SALT_ONLY = {"salt"}
# Providers: lxc runs the lab; libvirt's block of the Vagrantfile is validated.
VAGRANT_PLUGINS = ("vagrant-lxc", "vagrant-libvirt")


def _shell_lines(text):
    """The lines of a bash script outside here-documents and comments."""
    heredoc = None
    for line in text.splitlines():
        if heredoc:
            if line.strip() == heredoc:
                heredoc = None
            continue
        found = re.search(r"<<-?\s*['\"]?([A-Za-z_]+)['\"]?", line)
        if found and "<<<" not in line:
            heredoc = found.group(1)
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield line


def shell_commands(text, functions=()):
    """Command names at command positions of a bash script, less its
    functions, builtins, keywords and variable assignments."""
    found = set()
    expect_next = True  # a line continued with a backslash goes on where the last one ended
    for line in _shell_lines(text):
        continued = line.rstrip().endswith("\\")
        # a case pattern ("up | test)") names no command: keep what follows it
        line = re.sub(r"^\s*[\w*.|\s-]+\)(?=\s|$)", "", line)
        line = re.sub(r"\\$", "", line).replace("2>&1", "")  # a continued line; a redirection
        try:
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            tokens = list(lexer)
        except ValueError:
            continue  # a quote that continues on the next line
        expect = expect_next
        for token in tokens:
            if token.endswith("$"):  # an unquoted $( ... ): a command follows
                expect = True
                continue
            if expect:
                word = token
                if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word) or word.startswith("-") or word[:1].isdigit():
                    continue  # VAR=value before a command; an option or duration of sudo/env/timeout
                if re.match(r"^[a-z][a-z0-9_.+-]*$", word) and word not in SHELL_WORDS and word not in functions:
                    found.add(word)
                expect = word in SEPARATORS or word in PREFIXES
            if token in SEPARATORS:
                expect = True
        expect_next = expect if continued else True
    return found


def shell_functions(text):
    return set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\)\s*\{", text, re.M))


def python_commands(text):
    """Programs a Python file starts: subprocess calls with a literal first
    word, and shutil.which / host_tool with a literal name."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        first = node.args[0]
        if name in ("run", "Popen", "check_output", "check_call", "call") and isinstance(first, ast.List):
            if first.elts and isinstance(first.elts[0], ast.Constant) and isinstance(first.elts[0].value, str):
                word = first.elts[0].value
                if "/" not in word:
                    found.add(word)
        elif name in ("which", "host_tool") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(first.value)
    return found


def python_imports(text):
    """Top-level modules a Python file imports beyond the standard library."""
    mods = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            mods.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            mods.add(node.module.split(".")[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m not in SALT_ONLY}


def lxc_includes(build_box_text):
    return sorted(set(re.findall(r"^lxc\.include\s*=\s*(\S+)", build_box_text, re.M)))


def _host_python_scripts():
    """Python files the lab runs with the host's /usr/bin/python3."""
    yield REPO / "_modules" / "lemp_topology.py"
    yield REPO / "_modules" / "lemp_app.py"  # lab_secrets.py takes its secret-name rule
    for path in sorted(LAB.glob("*.py")):
        yield path


def requirements():
    scripts = [REPO / "lab", *sorted(LAB.glob("*.sh"))]
    texts = {path: path.read_text() for path in scripts}
    functions = set().union(*(shell_functions(t) for t in texts.values()))
    commands = set().union(*(shell_commands(t, functions) for t in texts.values()))
    for folder in ("tests", "tools/lab", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            commands |= python_commands(path.read_text())
    local = {p.stem for p in LAB.glob("*.py")} | {p.stem for p in (REPO / "_modules").glob("*.py")}
    modules = set().union(*(python_imports(p.read_text()) for p in _host_python_scripts())) - local
    files = lxc_includes((LAB / "build-box.sh").read_text())
    return {
        "commands": sorted(commands - OPTIONAL_COMMANDS),
        "files": files,
        "globs": list(VAGRANT_GEM_FILES),
        "python_modules": sorted(modules),
        "vagrant_plugins": list(VAGRANT_PLUGINS),
    }


def _in_root(root, *command):
    # from inside ROOT: a working directory outside it does not exist there
    return subprocess.run(["chroot", root, *command], capture_output=True, text=True, cwd=root)


def check(root):
    """Names of the requirements missing from ROOT, with what is missing."""
    need = requirements()
    missing = []
    for cmd in need["commands"]:
        if _in_root(root, "/bin/sh", "-c", f"command -v {shlex.quote(cmd)}").returncode != 0:
            missing.append(f"command {cmd}")
    for path in need["files"]:
        if not os.path.exists(os.path.join(root, path.lstrip("/"))):
            missing.append(f"file {path}")
    for pattern in need["globs"]:
        if not glob.glob(os.path.join(root, pattern.lstrip("/"))):
            missing.append(f"file {pattern}")
    for mod in need["python_modules"]:
        if _in_root(root, "/usr/bin/python3", "-c", f"import {mod}").returncode != 0:
            missing.append(f"python3 module {mod}")
    plugins = _in_root(root, "/usr/bin/env", "HOME=/root", "VAGRANT_CWD=/", "VAGRANT_CHECKPOINT_DISABLE=1",
                      "vagrant", "plugin", "list")
    for plugin in need["vagrant_plugins"]:
        if plugin not in plugins.stdout:
            missing.append(f"vagrant plugin {plugin} (vagrant plugin list: {(plugins.stdout + plugins.stderr).strip()[:500]})")
    return need, missing


def main(argv):
    if len(argv) == 2 and argv[1] == "list":
        json.dump(requirements(), sys.stdout, indent=1)
        print()
        return 0
    if len(argv) == 3 and argv[1] == "check":
        need, missing = check(argv[2])
        total = sum(len(v) for v in need.values())
        for item in missing:
            print(f"missing on a fresh Debian 12 root with the prerequisites installed: {item}")
        print(f"{total - len(missing)} of {total} host requirements found in {argv[2]}")
        return 1 if missing else 0
    print("usage: host_requirements.py list | check ROOT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
