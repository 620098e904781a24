"""The one loader of repository files by path, for the unit tests.

For what is not importable by name: the scripts Salt installs
(salt/*/files/*.py, some with dashes in their names), the runners, and the
execution and state modules of one name (_modules/X.py and _states/X.py).
tests/conftest.py puts _modules and tools/lab on the path for the rest.

A module, not conftest.py: tests/, tests/unit and tests/render would each
have a conftest.py, and ``from conftest import ...`` finds whichever one
pytest loaded last."""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]


def load(name, path):
    """The file at ``path`` (from the repository's root, or absolute) run as
    a new module called ``name``. Not put in sys.modules: every call gives a
    fresh copy, with its own globals (``__salt__`` and the like) to set."""
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lab_pillar(name):
    """pillar/<name>.sls rendered as the lab's master does, for the keys
    these files set from plain values of pillar/topology.yaml (their
    ``{% import_yaml 'topology.yaml' as topology %}``, a Salt extension that
    Jinja alone lacks, is given as a variable)."""
    import re

    import jinja2
    import yaml

    text = (REPO / "pillar" / f"{name}.sls").read_text()
    # an imported pillar file is rendered the same way (pillar/lb.sls reads
    # pillar/web.sls and galera.sls); plain YAML (topology.yaml) is loaded
    imports = dict((alias, lab_pillar(path[:-4]) if path.endswith(".sls")
                    else yaml.safe_load((REPO / "pillar" / path).read_text())) for path, alias in
                   re.findall(r"\{%-?\s*import_yaml\s+'([^']+)'\s+as\s+(\w+)\s*-?%\}", text))
    text = re.sub(r"\{%-?\s*import_yaml\s+'[^']+'\s+as\s+\w+\s*-?%\}", "", text)
    return yaml.safe_load(jinja2.Environment().from_string(text).render(**imports)) or {}
