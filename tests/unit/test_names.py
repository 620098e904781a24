"""Names point at rooms that exist: every repo path the README and docs/
name is in the repository, and the reactor folder the master serves is
there with its README."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
BACKTICKED = re.compile(r"`([^`\s]+)`")
LINKED = re.compile(r"\]\(([^)\s#]+)")
SUFFIXES = (".sls", ".py", ".yaml", ".md", ".jinja")


def named_paths(doc):
    """(line number, path) for every backticked or linked name that looks
    like a repo path: it contains a '/' or ends like a repo file. Machine
    paths (absolute), URLs and placeholders (<version>) are not repo paths."""
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        for name in BACKTICKED.findall(line) + LINKED.findall(line):
            if name.startswith(("/", "http:", "https:", "mailto:", "$")) or any(c in name for c in "<>*:"):
                continue
            if "/" in name or name.endswith(SUFFIXES):
                yield number, name


def exists(doc, name):
    if "/" not in name:  # a bare file name: somewhere in the repo
        return any(p for p in REPO.rglob(name) if ".git" not in p.relative_to(REPO).parts)
    return (REPO / name).exists() or (doc.parent / name).exists()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repo_path_the_docs_name_exists(doc):
    missing = [f"{doc.relative_to(REPO)}:{number}: {name}" for number, name in named_paths(doc) if not exists(doc, name)]
    assert not missing, "named but not in the repo (fix the name or add the file):\n" + "\n".join(missing)


def test_the_docs_name_repo_paths_at_all():
    assert len([name for doc in DOCS for _, name in named_paths(doc)]) > 20


def test_the_reactor_folder_the_master_serves_exists_and_says_what_goes_in_it():
    assert (REPO / "reactor" / "README.md").is_file()


def test_state_comments_name_orchestration_files_that_exist():
    """e.g. salt/galera/init.sls names the file that forms the cluster."""
    pattern = re.compile(r"\b(orch/[\w./-]+\.(?:sls|jinja))")
    missing = []
    for path in sorted((REPO / "salt").rglob("*.sls")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            missing += [f"{path.relative_to(REPO)}:{number}: {name}"
                        for name in pattern.findall(line) if not (REPO / name).exists()]
    assert not missing, "\n".join(missing)
