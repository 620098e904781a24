"""
A GlusterFS volume option, set only when gluster reports another value
(see _modules/lemp_glusterfs.py; Salt 3008 ships no glusterfs state).

    glusterfs-volume-uploads-option-auth.allow-set:
      lemp_glusterfs.option:
        - name: auth.allow
        - volume: uploads
        - value: 10.77.0.21,10.77.0.22,10.77.0.39
"""

__virtualname__ = "lemp_glusterfs"


def __virtual__():
    if "lemp_glusterfs.option_get" in __salt__:  # noqa: F821
        return __virtualname__
    return (False, "lemp_glusterfs execution module is not loaded (run saltutil.sync_modules)")


def option(name, volume, value):
    """Option ``name`` of ``volume`` is ``value`` (booleans in any spelling,
    comma-separated lists in any order: _modules/lemp_glusterfs.same_value)."""
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    same_value = __salt__["lemp_glusterfs.same_value"]  # noqa: F821
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    value = str(value)
    try:
        before = __salt__["lemp_glusterfs.option_get"](volume, name)  # noqa: F821
    except CommandExecutionError as exc:
        if __opts__["test"]:  # noqa: F821
            # the volume is created by an earlier state of the same run
            ret.update(result=None, changes={name: {"old": None, "new": value}},
                       comment=f"{volume} {name} would be set to {value} ({exc})")
        else:
            ret["comment"] = str(exc)
        return ret
    if same_value(before, value):
        ret.update(result=True, comment=f"{volume} {name} is already {before}")
        return ret
    if __opts__["test"]:  # noqa: F821
        ret.update(result=None, changes={name: {"old": before, "new": value}},
                   comment=f"{volume} {name} would be set to {value} (now {before})")
        return ret
    try:
        after = __salt__["lemp_glusterfs.option_set"](volume, name, value)  # noqa: F821
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret["changes"] = {name: {"old": before, "new": after}}
    if not same_value(after, value):
        ret["comment"] = f"{volume} {name} reads {after} after setting {value}"
        return ret
    ret.update(result=True, comment=f"{volume} {name} set to {value}")
    return ret
