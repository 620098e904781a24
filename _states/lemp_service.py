"""
A service runs the configuration on disk, also after a run that wrote it and
then failed (see _modules/lemp_service.py for the rules).

    nginx-runs-its-current-configuration:
      lemp_service.config_loaded:
        - name: nginx
        - paths: [/etc/nginx]
        - verify_cmd: /usr/sbin/nginx -t
        - action: reload
        - require:
          - service: nginx-service-running

Put it after the service.running state (require): that state starts and
enables the service; this one only reloads/restarts a running service whose
configuration changed since it loaded it, and records what it loaded.
The check is ``verify_cmd``, not ``check_cmd``: Salt treats ``check_cmd`` in
any state as its own requisite, runs it after the state and replaces the
result and comment with "check_cmd determined the state failed".
``action: none`` never touches the service and only reports a pending
restart (with ``apply_with``, the command that applies it).
``stand_in_fun`` names a Salt function that says whether what runs is a
stand-in the orchestration replaces (Galera: ``galera.is_first_install_server``);
then the state only records, like for a stopped service.
``applied_fun`` (+ ``applied_kwargs``) names a Salt function that says
whether the running service already has every setting of the files (Redis:
``lemp_redis.runs_settings``); then the state only records, no restart.
``confirm_fun`` (+ ``confirm_kwargs``) names a Salt function that says
whether the reload/restart really loaded the new configuration (HAProxy:
``lemp_haproxy.reload_confirmed``; its master re-reads the files after
``systemctl reload`` returned, and a failure there keeps the old
configuration running). It gets ``since``, the UNIX time the action began,
and returns ``{"loaded": bool, "why": str}``. Unless it says loaded, the
state fails and records nothing, so the next run tries again.
"""

import time

__virtualname__ = "lemp_service"


def __virtual__():
    if "lemp_service.status" in __salt__:  # noqa: F821
        return __virtualname__
    return (False, "lemp_service execution module is not loaded (run saltutil.sync_modules)")


def _short(digest):
    return digest[:12] if digest else None


def config_loaded(name, paths, verify_cmd=None, action="reload", apply_with=None, stamp_dir=None,
                  stand_in_fun=None, applied_fun=None, applied_kwargs=None, confirm_fun=None, confirm_kwargs=None):
    """Service ``name`` has loaded the configuration under ``paths`` (files,
    directories, globs). When it has not: run ``verify_cmd`` (a failure stops
    here and leaves the record as it was), ``action`` it (reload, restart, or
    none: only report), ask ``confirm_fun`` whether it loaded it (if given),
    then record the digest of what it loaded."""
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if not paths:
        ret["comment"] = f"lemp_service.config_loaded {name}: paths is empty; list the files {name} loads"
        return ret
    try:
        return _converge(ret, name, paths, verify_cmd, action, apply_with, stamp_dir, stand_in_fun, applied_fun,
                         applied_kwargs, confirm_fun, confirm_kwargs)
    except (CommandExecutionError, OSError) as exc:
        ret["comment"] = f"{name}: {exc}"
        return ret


def _converge(ret, name, paths, verify_cmd, action, apply_with, stamp_dir, stand_in_fun=None, applied_fun=None,
              applied_kwargs=None, confirm_fun=None, confirm_kwargs=None):
    facts = __salt__["lemp_service.status"](name, paths, action=action, stamp_dir=stamp_dir,  # noqa: F821
                                            stand_in_fun=stand_in_fun, applied_fun=applied_fun,
                                            applied_kwargs=applied_kwargs)
    decision, reason, digest = facts["decision"], facts["reason"], facts["digest"]
    loaded = {"loaded": {"old": _short(facts["stamp"]), "new": _short(digest)}}
    test = __opts__["test"]  # noqa: F821

    if decision == "current":
        ret.update(result=True, comment=f"{name} {reason} (sha256 {_short(digest)})")
        return ret
    if decision == "pending":
        hint = f"; apply it with: {apply_with}" if apply_with else ""
        ret.update(result=True, comment=f"{name} {reason}: restart pending, not done by this state{hint}")
        return ret
    if decision == "record":
        if test:
            ret.update(result=None, changes=loaded, comment=f"{name} {reason}: would record sha256 {_short(digest)}")
            return ret
        __salt__["lemp_service.write_stamp"](name, digest, stamp_dir=stamp_dir)  # noqa: F821
        ret.update(result=True, changes=loaded, comment=f"{name} {reason}: recorded sha256 {_short(digest)}")
        return ret

    # decision == "apply"
    if test:
        ret.update(result=None, changes=dict(loaded, **{action: name}),
                   comment=f"{name} {reason}: would check and {action} it")
        return ret
    if confirm_fun and confirm_fun not in __salt__:  # noqa: F821
        ret["comment"] = (f"{name}: confirm_fun {confirm_fun} is not a loaded Salt function (run "
                          "saltutil.sync_modules, or fix the state's confirm_fun); nothing was done")
        return ret
    if verify_cmd:
        ok, output = __salt__["lemp_service.check"](verify_cmd)  # noqa: F821
        if not ok:
            ret["comment"] = (f"{name} {reason}, but `{verify_cmd}` fails, so it was not {action}ed and keeps "
                              f"running its previous configuration; fix the configuration and run again:\n{output}")
            return ret
    since = time.time()
    ok, output = __salt__["lemp_service.apply"](name, action)  # noqa: F821
    if not ok:
        ret["comment"] = f"{name} {reason}; systemctl {action} {name} failed:\n{output}"
        return ret
    if confirm_fun:
        answer = __salt__[confirm_fun](since=since, **(confirm_kwargs or {}))  # noqa: F821
        if not (isinstance(answer, dict) and answer.get("loaded") is True):
            why = answer.get("why") if isinstance(answer, dict) else repr(answer)
            still = ("it keeps running its previous configuration" if action == "reload"
                     else "it may not run the configuration on disk")
            ret.update(changes={action: name},
                       comment=(f"{name} {reason}; systemctl {action} {name} succeeded, but {name} did not load "
                                f"the new configuration ({confirm_fun}): {still}. Nothing was recorded, so the "
                                f"next run tries again; fix the cause first. {why}"))
            return ret
    __salt__["lemp_service.write_stamp"](name, digest, stamp_dir=stamp_dir)  # noqa: F821
    confirmed = f"; {answer['why']}" if confirm_fun and answer.get("why") else ""
    ret.update(result=True, changes=dict(loaded, **{action: name}),
               comment=f"{name} {reason}: {action}ed (sha256 {_short(digest)}){confirmed}")
    return ret
