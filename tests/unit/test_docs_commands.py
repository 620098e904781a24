"""Every command line quoted in the runbooks and the install docs names things
that exist (issue #15).

Scanned: every fenced code block and every inline `code` span of
docs/runbooks/*.md and docs/install/*.md (either folder may be absent). A
line is split into simple commands on shell operators (|, &&, ;, ...);
a `# comment` ends it, and a line ending with a backslash continues on the
next. Each simple command is checked by its first word (after `sudo` and
`VAR=value` assignments):

- ``salt-run state.orchestrate orch.NAME`` (or ``state.orch``): orch/NAME.sls
  exists (orch.galera.x -> orch/galera/x.sls);
- ``salt-run MODULE.FUNC``: _runners/ has a module of that name (its
  ``__virtualname__``) exposing FUNC (``__func_alias__`` honoured), or Salt
  ships it (RUNNER_ALLOWED);
- ``salt TARGET MODULE.FUNC`` and ``salt-call MODULE.FUNC``: the same against
  _modules/, or Salt's own (MODULE_ALLOWED);
- ``state.apply SLS`` / ``state.sls SLS`` (runner or module): salt/SLS.sls or
  salt/SLS/init.sls exists, for each SLS of a comma list;
- ``pillar='{...}'``: the JSON parses. For an orchestration, each top-level key
  must be one the orchestration reads. The rule, kept simple: a key is read
  when ``pillar.get('KEY...')`` or ``pillar['KEY']`` appears (KEY being the
  part before the first ':') in orch/NAME.sls, in the templates it imports
  (``from 'X' import``, ``import_yaml 'X'``, looked up in orch/.. and salt/),
  or in the runner module it plans with (``steps('lemp_x.fn', ...)`` ->
  _runners/lemp_x.py);
- ``./lab SUBCOMMAND``: a subcommand ./lab's ``case`` accepts (and for
  ``./lab secrets``, a verb of lab_secrets_cmd);
- any word that is a repo path (tools/..., bench/..., tests/..., orch/...,
  salt/..., _modules/..., _runners/..., docs/..., ./tools/...): the file
  exists (a pytest ``::test`` suffix is ignored).

An inline span that is just ``orch.NAME`` is checked like an orchestration.
Lines that start with anything else are prose or other tools: not checked.
Every bad line is reported as file:line with the reason.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re
import shlex

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DOC_GLOBS = ("docs/runbooks/*.md", "docs/install/*.md")

# Salt's own runners and execution modules the docs may quote: a module name
# alone allows all of its functions.
RUNNER_ALLOWED = {
    "state.orchestrate", "state.orch", "state.event", "jobs", "manage", "saltutil", "fileserver", "cache",
    "pillar.show_pillar", "pillar.show_top", "doc.runner",
}
MODULE_ALLOWED = {
    "state.apply", "state.highstate", "state.sls", "state.show_sls", "state.show_highstate", "state.single",
    "test.ping", "test.version", "service", "cmd.run", "cmd.run_all", "saltutil", "pillar.get", "pillar.items",
    "grains", "mine.update", "mine.get", "event.send", "key.finger", "sys.doc", "pkg.version", "network.ip_addrs",
    "disk.usage", "status.uptime",
}
# Options of salt / salt-run / salt-call that take a separate value.
VALUE_OPTIONS = {"-t", "--timeout", "--out", "-c", "--config-dir", "-l", "--log-level", "-b", "--batch-size",
                 "--batch-wait", "--out-file", "--return", "-d"}
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ";;", "(", ")"}
REPO_PATH = re.compile(r"^(?:\./)?(tools|bench|tests|orch|salt|_modules|_runners|_states|docs|pillar|reactor|app)/\S+")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
ORCH_REF = re.compile(r"^orch\.[a-z0-9_.]+$")
PLACEHOLDER = re.compile(r"[<>]|\.\.\.")


# --- reading the docs ------------------------------------------------------

def code_lines(text: str) -> list[tuple[int, str, bool]]:
    """(line number, code, fenced) for every line of a fenced block and every
    inline code span outside them; continuation lines are joined onto the
    first (its number)."""
    out: list[tuple[int, str, bool]] = []
    in_fence = False
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            pending = None
            continue
        if in_fence:
            if pending:
                number, line = pending[0], pending[1].rstrip() + " " + line.strip()
                pending = None
            if line.rstrip().endswith("\\"):
                pending = (number, line.rstrip()[:-1])
                continue
            out.append((number, line.strip(), True))
        else:
            out.extend((number, span.strip(), False) for span in INLINE.findall(line))
    return out


def simple_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line, as word lists; raises
    ValueError when the quoting does not parse."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
            continue
        if token in SHELL_OPERATORS:
            commands.append([])
        elif re.fullmatch(r"\d?(>>?|<)", token):
            skip_next = True  # the redirection's target
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def strip_prefix(words: list[str]) -> list[str]:
    """Drop `sudo`, `env` and VAR=value assignments before the command."""
    i = 0
    while i < len(words) and (words[i] in ("sudo", "env") or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[i])):
        i += 1
    return words[i:]


def positionals(words: list[str]) -> list[str]:
    """Arguments that are not options (nor an option's value)."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-") and word != "-":
            skip = word in VALUE_OPTIONS
        else:
            out.append(word)
    return out


# --- what the repository offers -------------------------------------------

def exposed_functions(folder: pathlib.Path) -> dict[str, set[str]]:
    """{virtual name: functions Salt exposes} for every module of a folder of
    Salt modules (files starting with '_' are not loaded)."""
    modules: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        name, alias = path.stem, {}
        defs = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                target = node.targets[0].id
                if target == "__virtualname__" and isinstance(node.value, ast.Constant):
                    name = node.value.value
                elif target == "__func_alias__":
                    alias = ast.literal_eval(node.value)
            elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                defs.add(node.name)
        modules.setdefault(name, set()).update(alias.get(d, d) for d in defs)
    return modules


def lab_subcommands(lab: pathlib.Path) -> set[str]:
    """The words of ./lab's `case` branches (`up | box)` -> up, box)."""
    found = set()
    for line in lab.read_text().splitlines():
        m = re.match(r"^\s*([a-z][a-z| -]*)\)", line)
        if m:
            found.update(w.strip() for w in m.group(1).split("|"))
    return found - {""}


def lab_secrets_verbs(cmd_misc: pathlib.Path) -> set[str]:
    text = cmd_misc.read_text()
    body = text[text.index("lab_secrets_cmd()"):]
    return set(re.findall(r'"\$\{1:-\}" = ([a-z]+)', body))


PILLAR_READ = re.compile(r"""pillar(?:\.get'\]|\.get|\[\s*'pillar\.get'\s*\])\s*\(\s*['"]([^'":]+)|pillar\[\s*['"]([^'":]+)""")
TEMPLATE_IMPORT = re.compile(r"""(?:from|import_yaml|import)\s+['"]([^'"]+)['"]""")
STEPS_RUNNER = re.compile(r"""steps\(\s*['"]([a-z_]+)\.""")


def orch_path(name: str, repo: pathlib.Path = REPO) -> pathlib.Path:
    return repo / (name.replace(".", "/") + ".sls")


def pillar_keys_read(orch_file: pathlib.Path, repo: pathlib.Path = REPO) -> set[str]:
    """Top-level pillar keys an orchestration reads (the rule of the module
    docstring)."""
    keys: set[str] = set()
    seen: set[pathlib.Path] = set()
    todo = [orch_file]
    runners = {p.stem: p for p in (repo / "_runners").glob("*.py")}
    runner_names = {}
    for stem, path in runners.items():
        m = re.search(r'__virtualname__\s*=\s*["\']([a-z_]+)', path.read_text())
        runner_names[m.group(1) if m else stem] = path
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        text = path.read_text()
        keys.update(a or b for a, b in PILLAR_READ.findall(text))
        if path.suffix in (".sls", ".jinja"):
            for ref in TEMPLATE_IMPORT.findall(text):
                todo += [repo / ref, repo / "salt" / ref]
            todo += [runner_names[r] for r in STEPS_RUNNER.findall(text) if r in runner_names]
    return keys


def sls_exists(sls: str, repo: pathlib.Path = REPO) -> bool:
    base = repo / "salt" / sls.replace(".", "/")
    return base.with_suffix(".sls").is_file() or (base / "init.sls").is_file()


# --- the checks ------------------------------------------------------------

class Checker:
    def __init__(self, repo: pathlib.Path = REPO):
        self.repo = repo
        self.runners = exposed_functions(repo / "_runners")
        self.modules = exposed_functions(repo / "_modules")
        self.lab = lab_subcommands(repo / "lab")
        self.secrets_verbs = lab_secrets_verbs(repo / "tools/lab/cmd_misc.sh")

    def check_line(self, code: str, fenced: bool) -> list[str]:
        """Problems with one line of code (empty: fine)."""
        if not fenced and ORCH_REF.match(code):
            return self.check_orch(code, [])
        try:
            commands = simple_commands(code)
        except ValueError as exc:
            first = code.split()[0] if code.split() else ""
            return [f"cannot parse ({exc})"] if first in ("salt", "salt-run", "salt-call", "./lab") else []
        problems = []
        for words in commands:
            words = strip_prefix(words)
            if words:
                problems += self.check_command(words)
        return problems

    def check_command(self, words: list[str]) -> list[str]:
        problems = self.check_paths(words)
        head, args = words[0], positionals(words[1:])
        if head == "salt-run" and args:
            problems += self.check_function(args[0], args[1:], self.runners, RUNNER_ALLOWED, "_runners")
        elif head == "salt" and len(args) >= 2:
            problems += self.check_function(args[1], args[2:], self.modules, MODULE_ALLOWED, "_modules")
        elif head == "salt-call" and args:
            problems += self.check_function(args[0], args[1:], self.modules, MODULE_ALLOWED, "_modules")
        elif head == "./lab" and args:
            if args[0] not in self.lab:
                problems.append(f"./lab has no subcommand {args[0]!r} (it has: {', '.join(sorted(self.lab))})")
            elif args[0] == "secrets" and len(args) > 1 and args[1] not in self.secrets_verbs:
                problems.append(f"./lab secrets has no verb {args[1]!r} (it has: {', '.join(sorted(self.secrets_verbs))})")
        return problems

    def check_paths(self, words: list[str]) -> list[str]:
        problems = []
        for word in words:
            word = word.split("=", 1)[1] if re.match(r"^[a-z_-]+=", word) else word
            if REPO_PATH.match(word) and not PLACEHOLDER.search(word) and "*" not in word and "$" not in word:
                rel = word.removeprefix("./").split("::")[0].rstrip(",.;:")
                if not (self.repo / rel).exists():
                    problems.append(f"{rel} is not in the repository")
        return problems

    def check_function(self, fun: str, rest: list[str], repo_modules, allowed, folder) -> list[str]:
        if "." not in fun or PLACEHOLDER.search(fun):
            return [f"{fun!r} is not MODULE.FUNC"]
        module, name = fun.split(".", 1)
        if fun in ("state.orchestrate", "state.orch") and folder == "_runners":
            mods = [a.split("=", 1)[1] if a.startswith("mods=") else a for a in rest if "=" not in a or a.startswith("mods=")]
            if not mods:
                return [f"{fun} names no orchestration"]
            return self.check_orch(mods[0], rest)
        problems = []
        if module in repo_modules:
            if name not in repo_modules[module]:
                problems.append(f"{folder}: module {module} has no function {name}")
        elif fun not in allowed and module not in allowed:
            problems.append(f"{fun}: neither in {folder}/ nor one of Salt's allowed here")
        if fun in ("state.apply", "state.sls"):
            sls_args = [a for a in rest if "=" not in a]
            for sls in (sls_args[0].split(",") if sls_args else []):
                if not sls_exists(sls, self.repo):
                    problems.append(f"state {sls}: neither salt/{sls.replace('.', '/')}.sls nor .../init.sls exists")
        problems += self.check_pillar_json(rest)
        return problems

    def check_pillar_json(self, rest: list[str]) -> list[str]:
        problems = []
        for arg in rest:
            if arg.startswith("pillar="):
                try:
                    json.loads(arg.split("=", 1)[1])
                except ValueError as exc:
                    problems.append(f"pillar is not JSON ({exc})")
        return problems

    def check_orch(self, name: str, rest: list[str]) -> list[str]:
        if not name.startswith("orch.") or PLACEHOLDER.search(name):
            return [f"{name!r} is not an orchestration orch.NAME"]
        path = orch_path(name, self.repo)
        if not path.is_file():
            return [f"{name}: {path.relative_to(self.repo)} does not exist"]
        problems = []
        for arg in rest:
            if not arg.startswith("pillar="):
                continue
            try:
                data = json.loads(arg.split("=", 1)[1])
            except ValueError as exc:
                problems.append(f"pillar is not JSON ({exc})")
                continue
            if not isinstance(data, dict):
                problems.append("pillar is not a JSON object")
                continue
            read = pillar_keys_read(path, self.repo)
            problems += [f"{name} reads no pillar key {key!r} (it reads: {', '.join(sorted(read)) or 'none'})"
                         for key in data if key not in read]
        return problems


def doc_files(repo: pathlib.Path = REPO) -> list[pathlib.Path]:
    return sorted(p for pattern in DOC_GLOBS for p in repo.glob(pattern))


def bad_lines(paths, checker: Checker, root: pathlib.Path = REPO) -> list[str]:
    """One entry per problem: `file:line: the code` and the reason."""
    report = []
    for path in paths:
        for number, code, fenced in code_lines(path.read_text()):
            for problem in checker.check_line(code, fenced):
                report.append(f"{path.relative_to(root)}:{number}: {code}\n    -> {problem}")
    return report


# --- tests -----------------------------------------------------------------

@pytest.fixture(scope="module")
def checker():
    return Checker()


def test_every_command_in_the_runbooks_and_install_docs_names_what_exists(checker):
    report = bad_lines(doc_files(), checker)
    assert not report, "commands quoting what the code does not have:\n" + "\n".join(report)


def test_the_runbooks_are_scanned():
    assert any(p.parent.name == "runbooks" for p in doc_files()), "docs/runbooks/*.md is missing"


def test_code_lines_reads_fences_inline_spans_and_continuations():
    text = "Run `salt-run lemp_backup.list` now.\n```sh\nsalt '*' \\\n  test.ping  # all\n```\nafter `x`\n"
    assert code_lines(text) == [
        (1, "salt-run lemp_backup.list", False),
        (3, "salt '*' test.ping  # all", True),
        (6, "x", False),
    ]


def test_simple_commands_splits_on_operators_and_drops_comments_and_redirections():
    line = "tar -C / -czf - etc | gpg -r a > out.gpg && salt '*' test.ping  # why"
    assert simple_commands(line) == [["tar", "-C", "/", "-czf", "-", "etc"], ["gpg", "-r", "a"],
                                     ["salt", "*", "test.ping"]]
    assert simple_commands("""salt-run state.orchestrate orch.deploy pillar='{"app": {"version": "1.1.0"}}'""") == [
        ["salt-run", "state.orchestrate", "orch.deploy", 'pillar={"app": {"version": "1.1.0"}}']]


@pytest.mark.parametrize("line", [
    "salt-run state.orchestrate orch.site",
    "salt-run state.orchestrate orch.galera.bootstrap",
    """salt-run state.orchestrate orch.deploy pillar='{"app": {"version": "1.1.0"}, "maintenance": false}'""",
    """salt-run state.orchestrate orch.scale_in pillar='{"node": "web3"}'""",
    """salt-run state.orchestrate orch.autoscale pillar='{"scale_request": {"sender": "mon1", "direction": "out"}}'""",
    "salt-run lemp_backup.list",
    "salt-run lemp_scale.in node=web3",
    "salt-run jobs.active",
    "salt -L lb1,lb2 haproxy_runtime.drain web web1",
    "salt -C 'G@roles:web' state.apply nginx.maintenance pillar='{\"nginx_maintenance\": {\"enabled\": true}}'",
    "salt web1 state.apply webapp.release,nginx",
    "salt-call lemp_zabbix_ldap.sync",
    "sudo salt '*' test.ping",
    "./lab ssh salt1",
    "./lab secrets rotate app_db",
    "python3 tools/lab/lab_secrets.py",
    "systemctl status keepalived",
    "echo it's prose",
])
def test_good_lines_pass(checker, line):
    assert checker.check_line(line, fenced=True) == []


@pytest.mark.parametrize("line, problem", [
    ("salt-run state.orchestrate orch.nothing", "orch/nothing.sls does not exist"),
    ("salt-run state.orchestrate orch.deploy pillar='{\"app\": '", "pillar is not JSON"),
    ("""salt-run state.orchestrate orch.deploy pillar='{"version": "1.1.0"}'""", "reads no pillar key 'version'"),
    ("salt-run lemp_backup.nope", "module lemp_backup has no function nope"),
    ("salt-run lemp_backup.list_", "module lemp_backup has no function list_"),
    ("salt-run made_up.fn", "neither in _runners/"),
    ("salt web1 galera.nope", "module galera has no function nope"),
    ("salt web1 state.apply nginx.nope", "state nginx.nope"),
    ("salt web1 made_up.fn", "neither in _modules/"),
    ("./lab frobnicate", "no subcommand 'frobnicate'"),
    ("./lab secrets shred x", "no verb 'shred'"),
    ("python3 tools/lab/nope.py", "tools/lab/nope.py is not in the repository"),
    ("salt-run state.orchestrate orch.<name>", "is not an orchestration"),
    ("salt 'web1 test.ping", "cannot parse"),
])
def test_bad_lines_are_reported_with_the_reason(checker, line, problem):
    problems = checker.check_line(line, fenced=True)
    assert any(problem in p for p in problems), problems


def test_an_inline_orch_name_is_checked(checker):
    assert checker.check_line("orch.galera_recover", fenced=False) == []
    assert checker.check_line("orch.nothing", fenced=False) == ["orch.nothing: orch/nothing.sls does not exist"]


def test_pillar_keys_read_follow_imports_and_the_runner():
    assert {"app", "maintenance", "haproxy"} <= pillar_keys_read(REPO / "orch/deploy.sls")
    assert "scaling" in pillar_keys_read(REPO / "orch/scale_out.sls")  # through salt/scaling/map.jinja
    assert {"secret", "machine"} <= pillar_keys_read(REPO / "orch/rotate_secret.sls")


def test_the_report_names_file_and_line(tmp_path, checker):
    doc = tmp_path / "docs/runbooks/x.md"
    doc.parent.mkdir(parents=True)
    doc.write_text("# x\n\n```sh\nsalt-run state.orchestrate orch.nothing\n```\n")
    report = bad_lines([doc], checker, root=tmp_path)
    assert report == ["docs/runbooks/x.md:4: salt-run state.orchestrate orch.nothing\n"
                      "    -> orch.nothing: orch/nothing.sls does not exist"]


def test_an_absent_install_folder_is_fine(tmp_path):
    (tmp_path / "docs/runbooks").mkdir(parents=True)
    (tmp_path / "docs/runbooks/a.md").write_text("a")
    assert [p.name for p in doc_files(tmp_path)] == ["a.md"]


# --- the Zabbix problem names the runbooks quote ---------------------------

TEMPLATES = REPO / "salt/zabbix/server/files/templates"
MACRO_IN_SPAN = re.compile(r"\{(HOST|ITEM)\.")


def trigger_names(folder: pathlib.Path = TEMPLATES) -> set[str]:
    """Every trigger (and trigger prototype) name of the repo's templates."""
    import yaml

    names: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for key in ("triggers", "trigger_prototypes", "dependencies"):
                for trigger in node.get(key) or []:
                    if isinstance(trigger, dict) and "name" in trigger:
                        names.add(trigger["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(folder.glob("*.yaml")):
        walk(yaml.safe_load(path.read_text()))
    return names


def quoted_alerts(text: str) -> list[tuple[int, str]]:
    """(line, span) for what a runbook quotes as an alert: every `code` span in
    the first cell of a table row under a "## Zabbix alerts" heading, in the
    last cell of the index's table (README.md), and anywhere a span holds a
    {HOST.*} or {ITEM.*} macro."""
    found = []
    section = ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            section = line.strip("# ").lower()
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        spans = set()
        if cells and section == "zabbix alerts":
            spans.update(INLINE.findall(cells[0]))
        if cells and section == "runbooks" and len(cells) >= 3:
            spans.update(INLINE.findall(cells[-1]))
        spans.update(s for s in INLINE.findall(line) if MACRO_IN_SPAN.search(s))
        found += [(number, s) for s in sorted(spans)]
    return found


def test_every_alert_a_runbook_quotes_is_a_trigger_of_the_templates():
    names = trigger_names()
    bad = [f"{p.relative_to(REPO)}:{n}: {span}" for p in sorted((REPO / "docs/runbooks").glob("*.md"))
           for n, span in quoted_alerts(p.read_text()) if span not in names]
    assert not bad, ("not a trigger name of salt/zabbix/server/files/templates/*.yaml (quote it exactly, macros "
                     "unexpanded):\n" + "\n".join(bad))


def test_quoted_alerts_reads_the_alert_tables_and_macro_spans():
    text = ("# Runbooks\n| a | b | `x {$M}` |\n## Zabbix alerts\n| alert | means |\n|---|---|\n"
            "| `garbd is not running`, `y` | `not this` |\nsee `{HOST.NAME} is down`\n")
    assert quoted_alerts(text) == [(2, "x {$M}"), (6, "garbd is not running"), (6, "y"), (7, "{HOST.NAME} is down")]
    assert "garbd is not running" in trigger_names()
    assert "Galera node in a non-Primary component (logged)" in trigger_names()  # a trigger others depend on
