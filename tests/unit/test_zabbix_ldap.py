"""Staff access through a directory (_modules/lemp_zabbix_ldap.py): the
sync's decision (directory groups -> Zabbix users to create, update,
disable), the lab directory's seed, and the settings' errors, from sample
directory and Zabbix 6.0 API answers (ids as strings)."""

import pathlib

import pytest
import yaml

import lemp_zabbix_ldap as zl  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
ZABBIX = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
DIRECTORY = yaml.safe_load((REPO / "salt" / "openldap" / "defaults.yaml").read_text())["openldap"]
SETTINGS = zl.effective_settings(dict(ZABBIX["ldap"], lab_directory=True), DIRECTORY)
PEOPLE_DN = "ou=people,dc=lemp-ha,dc=lab"
GROUPIDS = {"staff": "7", "ops": "8", "directory": "20", "directory-disabled": "21"}
ROLEIDS = {"User role": "1", "Admin role": "2", "Super admin role": "3"}
ADMIN = {"userid": "1", "username": "Admin", "name": "Zabbix", "roleid": "3", "usrgrps": [{"usrgrpid": "9"}],
         "medias": []}
LAB_OPS = {"userid": "3", "username": "lab-ops", "name": "Lab ops mailbox", "roleid": "2",
           "usrgrps": [{"usrgrpid": "8"}], "medias": []}


def person(uid, cn, mail=""):
    return f"uid={uid},{PEOPLE_DN}", {"uid": uid, "cn": cn, "mail": mail}


def members(groups, people):
    return zl.directory_members(groups, dict(people), SETTINGS)


def zabbix_user(userid, uid, name, roleid, groups, mail=None):
    medias = [{"mediatypeid": "1", "sendto": [mail], "active": "0", "severity": "63"}] if mail else []
    return {"userid": userid, "username": uid, "name": name, "roleid": roleid,
            "usrgrps": [{"usrgrpid": g} for g in groups], "medias": medias}


ANN = person("ann", "Ann Staff", "ann@example.com")
BOB = person("bob", "Bob Ops", "bob@example.com")


def test_the_lab_directory_fills_the_zabbix_ldap_settings():
    assert SETTINGS["enabled"] is True
    assert SETTINGS["host"] == "ldap://127.0.0.1" and SETTINGS["port"] == 389
    assert SETTINGS["base_dn"] == PEOPLE_DN
    assert SETTINGS["group_base_dn"] == "ou=groups,dc=lemp-ha,dc=lab"
    assert SETTINGS["bind_dn"] == "cn=zabbix,ou=services,dc=lemp-ha,dc=lab"


def test_a_company_directory_set_in_pillar_wins_over_the_lab_defaults():
    mine = dict(ZABBIX["ldap"], enabled=True, host="ldaps://ldap.example.com", port=636,
                base_dn="ou=Users,dc=example,dc=com", group_base_dn="ou=Groups,dc=example,dc=com",
                bind_dn="cn=zabbix,ou=Apps,dc=example,dc=com")
    out = zl.effective_settings(mine)
    assert out["host"] == "ldaps://ldap.example.com" and out["base_dn"] == "ou=Users,dc=example,dc=com"


def test_ldap_off_needs_no_directory_settings():
    assert zl.effective_settings(ZABBIX["ldap"])["enabled"] is False


@pytest.mark.parametrize("change, message", [
    ({"host": "ldap.example.com"}, "zabbix:lookup:ldap:host 'ldap.example.com' must be ldap://host or ldaps://host"),
    ({"base_dn": ""}, "zabbix:lookup:ldap:base_dn is empty"),
    ({"bind_dn": "zabbix"}, "zabbix:lookup:ldap:bind_dn 'zabbix' is not a DN"),
    ({"groups": []}, "zabbix:lookup:ldap:groups is empty"),
    ({"groups": [{"directory": "staff", "user_group": "staff"}]}, r"zabbix:lookup:ldap:groups\[0\] has no role"),
    ({"groups": [{"directory": "staff", "user_group": "directory", "role": "User role"}]},
     "the login or disabled group"),
])
def test_bad_ldap_settings_name_the_pillar_key(change, message):
    with pytest.raises(zl.LdapSettingsError, match=message):
        zl.effective_settings(dict(SETTINGS, lab_directory=False, **change))


def test_authentication_keeps_internal_as_the_default_so_local_users_stay_local():
    params = zl.authentication_params(SETTINGS, "bind-secret")
    assert params["authentication_type"] == "0" and params["ldap_configured"] == "1"
    assert params["ldap_bind_dn"] == SETTINGS["bind_dn"] and params["ldap_bind_password"] == "bind-secret"


def test_authentication_changes_only_what_differs_and_sends_an_unreadable_password_with_it():
    desired = zl.authentication_params(SETTINGS, "bind-secret")
    same = {k: v for k, v in desired.items() if k != "ldap_bind_password"}
    assert zl.authentication_changes(same, desired) == {}
    moved = dict(same, ldap_host="ldap://old")
    assert zl.authentication_changes(moved, desired) == {"ldap_host": "ldap://127.0.0.1",
                                                        "ldap_bind_password": "bind-secret"}
    assert zl.authentication_changes(dict(same, ldap_bind_password="old"), desired) == {
        "ldap_bind_password": "bind-secret"}


def test_a_new_staff_member_becomes_a_read_only_zabbix_user_with_ldap_login():
    plan = zl.sync_plan(members({"staff": [ANN[0]]}, [ANN]), [ADMIN, LAB_OPS], SETTINGS, GROUPIDS, ROLEIDS, "1")
    assert plan["create"] == [{"username": "ann", "name": "Ann Staff", "roleid": "1",
                               "usrgrps": [{"usrgrpid": "20"}, {"usrgrpid": "7"}],
                               "medias": [{"mediatypeid": "1", "sendto": ["ann@example.com"], "active": "0",
                                           "severity": "63", "period": "1-7,00:00-24:00"}]}]
    assert plan["update"] == plan["disable"] == plan["skipped"] == []


def test_a_member_of_staff_and_ops_gets_both_groups_and_the_ops_role():
    plan = zl.sync_plan(members({"staff": [BOB[0]], "ops": [BOB[0]]}, [BOB]), [], SETTINGS, GROUPIDS, ROLEIDS)
    assert plan["create"][0]["roleid"] == "2"
    assert plan["create"][0]["usrgrps"] == [{"usrgrpid": "20"}, {"usrgrpid": "7"}, {"usrgrpid": "8"}]
    assert plan["create"][0]["medias"] == []  # no Email media type known


def test_a_synced_directory_gives_an_empty_plan():
    users = [ADMIN, LAB_OPS, zabbix_user("5", "ann", "Ann Staff", "1", ["7", "20"], "ann@example.com")]
    plan = zl.sync_plan(members({"staff": [ANN[0]]}, [ANN]), users, SETTINGS, GROUPIDS, ROLEIDS, "1")
    assert plan == {"create": [], "update": [], "disable": [], "skipped": []}


def test_a_staff_member_moved_to_ops_is_updated_in_place():
    users = [zabbix_user("5", "ann", "Ann Staff", "1", ["7", "20"], "ann@example.com")]
    plan = zl.sync_plan(members({"ops": [ANN[0]]}, [ANN]), users, SETTINGS, GROUPIDS, ROLEIDS, "1")
    assert plan["update"] == [{"userid": "5", "username": "ann", "roleid": "2",
                               "usrgrps": [{"usrgrpid": "20"}, {"usrgrpid": "8"}]}]


def test_a_person_gone_from_the_directory_is_disabled_not_deleted_and_local_users_are_untouched():
    users = [ADMIN, LAB_OPS, zabbix_user("5", "ann", "Ann Staff", "1", ["7", "20"])]
    plan = zl.sync_plan(members({"staff": []}, []), users, SETTINGS, GROUPIDS, ROLEIDS)
    assert plan["disable"] == [{"userid": "5", "username": "ann", "usrgrps": [{"usrgrpid": "21"}]}]
    assert plan["create"] == plan["update"] == []
    # already disabled: nothing more to do
    users[2] = zabbix_user("5", "ann", "Ann Staff", "1", ["21"])
    assert zl.sync_plan({}, users, SETTINGS, GROUPIDS, ROLEIDS)["disable"] == []


def test_a_person_in_the_directory_but_in_no_mapped_group_is_disabled():
    users = [zabbix_user("5", "ann", "Ann Staff", "1", ["7", "20"])]
    plan = zl.sync_plan(members({"staff": [], "ops": []}, [ANN]), users, SETTINGS, GROUPIDS, ROLEIDS)
    assert [u["username"] for u in plan["disable"]] == ["ann"]


def test_a_disabled_person_who_comes_back_is_enabled_by_the_update():
    users = [zabbix_user("5", "ann", "Ann Staff", "1", ["21"])]
    plan = zl.sync_plan(members({"staff": [ANN[0]]}, [ANN]), users, SETTINGS, GROUPIDS, ROLEIDS)
    assert plan["update"] == [{"userid": "5", "username": "ann", "usrgrps": [{"usrgrpid": "20"}, {"usrgrpid": "7"}]}]


def test_a_local_user_with_a_directory_name_is_never_taken_over():
    local = dict(LAB_OPS, username="bob")
    plan = zl.sync_plan(members({"ops": [BOB[0]]}, [BOB]), [local], SETTINGS, GROUPIDS, ROLEIDS)
    assert plan["create"] == plan["update"] == plan["disable"] == []
    assert plan["skipped"][0]["username"] == "bob"
    assert zl.plan_summary(plan) == ["skip bob: a local Zabbix user (not in the login group) has this directory "
                                     "name: left alone"]


def test_group_members_that_are_not_people_are_ignored():
    bind = "cn=zabbix,ou=services,dc=lemp-ha,dc=lab"
    found = members({"staff": [bind, ANN[0].upper()], "other": [BOB[0]]}, [ANN, BOB])
    assert found == {"ann": {"name": "Ann Staff", "mail": "ann@example.com", "groups": ["staff"]}}


def test_ssha_round_trip_and_a_wrong_password_does_not_match():
    value = zl.ssha("s3cret", b"12345678")
    assert value.startswith("{SSHA}")
    assert zl.ssha_matches(value, "s3cret") and zl.ssha_matches(value.encode(), "s3cret")
    assert not zl.ssha_matches(value, "other")
    assert not zl.ssha_matches("{CRYPT}$6$abc", "s3cret") and not zl.ssha_matches("", "s3cret")
    assert zl.ssha("s3cret") != zl.ssha("s3cret")  # salted


def lab_directory(**change):
    return dict(DIRECTORY, people=[{"uid": "ann", "cn": "Ann Staff", "mail": "ann@example.com", "groups": ["staff"]}],
                **change)


def test_the_lab_directory_has_people_groups_and_a_bind_account():
    entries = zl.lab_directory_entries(lab_directory())
    assert entries[f"uid=ann,{PEOPLE_DN}"]["sn"] == ["Staff"]
    assert entries["cn=staff,ou=groups,dc=lemp-ha,dc=lab"]["member"] == [f"uid=ann,{PEOPLE_DN}"]
    # groupOfNames needs a member: an empty group holds the bind account
    assert entries["cn=ops,ou=groups,dc=lemp-ha,dc=lab"]["member"] == ["cn=zabbix,ou=services,dc=lemp-ha,dc=lab"]
    assert "ou=services,dc=lemp-ha,dc=lab" in entries


@pytest.mark.parametrize("people, message", [
    ([{"uid": "Ann Smith"}], r"openldap:lookup:people\[0\]:uid 'Ann Smith' is invalid"),
    ([{"uid": "ann", "groups": ["admins"]}], r"openldap:lookup:people\[0\] \(ann\) is in group 'admins'"),
])
def test_bad_lab_people_name_the_pillar_key(people, message):
    with pytest.raises(zl.LdapSettingsError, match=message):
        zl.lab_directory_entries(dict(DIRECTORY, people=people))


def test_a_bad_lab_domain_names_the_pillar_key():
    with pytest.raises(zl.LdapSettingsError, match="openldap:lookup:domain 'lemp ha' is not a DNS domain"):
        zl.directory_suffix({"domain": "lemp ha"})


def test_the_seed_adds_what_is_missing_parents_first_then_changes_nothing():
    desired = zl.lab_directory_entries(lab_directory())
    ann = f"uid=ann,{PEOPLE_DN}"
    passwords = {ann: "pw"}
    adds, modifies = zl.directory_changes({}, desired, passwords)
    order = list(adds)
    assert order.index(PEOPLE_DN) < order.index(ann) and modifies == {}
    assert zl.ssha_matches(adds[ann]["userPassword"][0], "pw")
    # as slapd returns them: attribute names in any case, the stored hash
    current = {dn: {k.lower(): v for k, v in attrs.items()} for dn, attrs in adds.items()}
    assert zl.directory_changes(current, desired, passwords) == ({}, {})


def test_the_seed_corrects_a_changed_password_and_a_group_edited_by_hand_but_deletes_nothing():
    desired = zl.lab_directory_entries(lab_directory())
    ann = f"uid=ann,{PEOPLE_DN}"
    staff = "cn=staff,ou=groups,dc=lemp-ha,dc=lab"
    current, _ = zl.directory_changes({}, desired, {ann: "old"})
    current[staff] = dict(current[staff], member=["cn=zabbix,ou=services,dc=lemp-ha,dc=lab"])
    current["uid=extra," + PEOPLE_DN] = {"uid": ["extra"]}
    adds, modifies = zl.directory_changes(current, desired, {ann: "new"})
    assert adds == {}
    assert sorted(modifies) == [staff, ann]
    assert modifies[staff] == {"member": [ann]}
    assert zl.ssha_matches(modifies[ann]["userPassword"][0], "new")


def test_a_sync_waits_for_the_one_holding_the_lock_and_then_runs(tmp_path):
    import fcntl
    lock = tmp_path / "sync.lock"
    assert zl._one_at_a_time(lambda: "ran", path=str(lock)) == "ran"
    with open(lock, "a", encoding="utf-8") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(Exception, match="another directory sync"):
            zl._one_at_a_time(lambda: "ran", wait=0.3, path=str(lock))
