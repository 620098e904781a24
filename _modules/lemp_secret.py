"""
Read a secret from the pillar, or stop the render saying where it comes from.

Every state that needs a secret reads it with
``salt['lemp_secret.require']('tls:key')``: a missing secret fails the render
of that state file, before anything changes on the machine, with one message
that names the key and the fix. (Before, the same fact was reported three
ways: a Jinja ``raise()``, a ``test.fail_without_changes`` state, or a silent
empty default.)
"""

__virtualname__ = "lemp_secret"  # the file name: no __virtual__ needed

SPEC = "pillar/secrets.spec.yaml"

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as SecretMissing
except ImportError:  # pragma: no cover
    SecretMissing = ValueError


def missing_message(key):
    return (
        f"secret {key} is missing from the pillar: every secret is named in {SPEC}; "
        "the lab generates them (./lab up), production puts them in the GPG-encrypted pillar (docs/secrets.md)"
    )


def require(key):
    """Return the pillar value at ``key`` (a colon path such as
    ``tls:vip:cert``); raise naming the key and the fix when it is missing or
    empty.

    CLI Example::

        salt-call lemp_secret.require sessions:redis_password
    """
    # Salt 3008 masks pillar values on pillar.get's output; a template needs
    # the real value.
    value = __salt__["pillar.get"](key, None, unmask=True)  # noqa: F821  (injected by the loader)
    if value is None or value == "" or value == {}:
        raise SecretMissing(missing_message(key))
    return value


# A rotation in progress (orch.rotate_secret, _runners/lemp_secrets.py) keeps
# the old value beside the new one, at the same key with this suffix, in the
# pillar of every machine that holds the secret, until its last step.
PREVIOUS_SUFFIX = "_previous"


def previous_key(key):
    """``app:database:password`` -> ``app:database:password_previous``."""
    return key + PREVIOUS_SUFFIX


def previous(key):
    """The value ``key`` had before a rotation that is not over yet, or None
    (no rotation going on): the server side of a secret accepts it as well
    as the new one meanwhile.

    CLI Example::

        salt-call lemp_secret.previous app:database:password
    """
    value = __salt__["pillar.get"](previous_key(key), None, unmask=True)  # noqa: F821
    return value or None
