"""
The web application's release rules (minimal: the full module replaces it).

CLI Example::

    salt-call lemp_app.check_version 1.1.0
"""

import re

from salt.exceptions import CommandExecutionError

__virtualname__ = "lemp_app"

VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")


def __virtual__():
    return __virtualname__


def check_version(version):
    """Return the release name, or raise saying what a valid one looks like."""
    if version is None or str(version) == "":
        raise CommandExecutionError(
            'app:version is missing: set it in pillar (pillar/app.sls) or pass pillar={"app": {"version": "..."}}'
        )
    version = str(version)
    if not VERSION_RE.match(version) or ".." in version:
        raise CommandExecutionError(
            f'app:version "{version}" is invalid: 1-64 of A-Z a-z 0-9 . _ + -, starting with a letter or digit, no ".."'
        )
    return version
