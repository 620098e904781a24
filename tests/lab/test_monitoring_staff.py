"""Staff access through the lab directory (issue #10, item 5), on the lab.

A read-only staff person of the lab directory (slapd on mon1, seeded from
pillar/monitor.sls: uid lab-staff, password the generated secret
ldap_lab_staff) logs in to the Zabbix web UI over real HTTPS with a
session, sees the "Platform overview" dashboard, and cannot change
configuration through the API. Removed from the directory and synced
(`salt mon1 lemp_zabbix_ldap.sync`, what the timer runs every minute), they
can no longer log in. The test puts them back (state openldap.seed, then a
sync) in `finally`, so the lab stays as it was.
"""

import pathlib
import shlex
import ssl

import pytest
import yaml
from zabbix_utils import ZabbixAPI

import lemp_zabbix_ldap  # tests/conftest.py puts _modules on the path
from lemplab import wait_for
from test_monitoring import mon1  # noqa: F401  (shared fixture)

REPO = pathlib.Path(__file__).resolve().parents[2]
DIRECTORY = yaml.safe_load((REPO / "salt" / "openldap" / "defaults.yaml").read_text())["openldap"]

STAFF_UID = "lab-staff"               # pillar/monitor.sls openldap:lookup:people
STAFF_SECRET = "ldap_lab_staff"       # pillar/secrets.spec.yaml
SUFFIX = lemp_zabbix_ldap.directory_suffix(DIRECTORY)
DASHBOARD = "Platform overview"


@pytest.fixture(scope="module")
def base_url(lab, mon1):
    address = lab.machines[mon1]["address"]
    lab.require_route(address)
    return f"https://{address}"


def api_as(lab, base_url, user, password):
    api = ZabbixAPI(url=f"{base_url}/api_jsonrpc.php", ssl_context=ssl.create_default_context(cafile=lab.ca_cert_path))
    api.login(user=user, password=password)
    return api


def sync(lab, mon1):
    result = lab.salt(mon1, "lemp_zabbix_ldap.sync", timeout=300).get(mon1)
    assert isinstance(result, dict), f"lemp_zabbix_ldap.sync on {mon1} failed: {result}"
    return result


def web_login(lab, base_url, user, password):
    """The sign-in form, as a browser posts it: (session, last response)."""
    session = lab.new_session()
    session.get(f"{base_url}/index.php", timeout=30).raise_for_status()
    response = session.post(f"{base_url}/index.php", timeout=30, allow_redirects=True,
                            data={"name": user, "password": password, "autologin": "1", "enter": "Sign in"})
    return session, response


def signed_in(response):
    # A signed-in page has the sign-out link; the login page has the form.
    return "action=dashboard" in response.url or 'id="logout"' in response.text or "Sign out" in response.text


@pytest.fixture(scope="module")
def staff_password(lab):
    return lab.secrets["passwords"][STAFF_SECRET]


def test_a_directory_staff_user_signs_in_to_the_web_ui_and_sees_the_overview(lab, mon1, base_url, staff_password):
    sync(lab, mon1)
    session, response = web_login(lab, base_url, STAFF_UID, staff_password)
    assert response.status_code == 200, response.status_code
    assert signed_in(response), f"{STAFF_UID} not signed in; the page says: {response.text[:800]}"
    assert "zbx_session" in session.cookies, sorted(session.cookies.keys())

    admin = api_as(lab, base_url, "Admin", lab.secrets["passwords"]["zabbix_admin"])
    try:
        boards = admin.dashboard.get(output=["dashboardid", "name"], filter={"name": DASHBOARD})
    finally:
        admin.logout()
    assert boards, f"no dashboard {DASHBOARD!r} in Zabbix (salt/zabbix/server/api.sls creates it)"
    page = session.get(f"{base_url}/zabbix.php", timeout=30,
                       params={"action": "dashboard.view", "dashboardid": boards[0]["dashboardid"]})
    assert page.status_code == 200 and DASHBOARD in page.text, (
        f"{STAFF_UID} does not see the dashboard {DASHBOARD!r} (is it shared with group staff?): "
        f"{page.text[:800]}")


def test_a_directory_staff_user_cannot_change_configuration_through_the_api(lab, base_url, staff_password):
    api = api_as(lab, base_url, STAFF_UID, staff_password)
    name = "lemp-ha/staff-must-not-create-this"
    try:
        with pytest.raises(Exception) as refused:
            api.hostgroup.create(name=name)
        assert "permission" in str(refused.value).lower() or "no permissions" in str(refused.value).lower(), \
            str(refused.value)
    finally:
        api.logout()
        admin = api_as(lab, base_url, "Admin", lab.secrets["passwords"]["zabbix_admin"])
        try:
            leaked = admin.hostgroup.get(output=["groupid"], filter={"name": name})
            if leaked:
                admin.hostgroup.delete(*[g["groupid"] for g in leaked])
        finally:
            admin.logout()
        assert not leaked, f"{STAFF_UID} created host group {name}"


def test_a_person_removed_from_the_directory_can_no_longer_sign_in(lab, mon1, base_url, staff_password):
    admin_dn = f"cn=admin,{SUFFIX}"
    person_dn = f"uid={STAFF_UID},{DIRECTORY['people_rdn']},{SUFFIX}"
    password = shlex.quote(lab.secrets["passwords"]["ldap_admin"])
    lab.run(mon1, f"ldapdelete -x -H ldap://127.0.0.1 -D {shlex.quote(admin_dn)} -y <(printf %s {password}) "
                  f"{shlex.quote(person_dn)}")
    try:
        sync(lab, mon1)
        # the end state, not this sync's changes: the every-minute timer may
        # have disabled the person first
        admin = api_as(lab, base_url, "Admin", lab.secrets["passwords"]["zabbix_admin"])
        try:
            users = admin.user.get(output=["username"], filter={"username": STAFF_UID}, selectUsrgrps=["name"])
        finally:
            admin.logout()
        assert users and {g["name"] for g in users[0]["usrgrps"]} == {"directory-disabled"}, users
        _, response = web_login(lab, base_url, STAFF_UID, staff_password)
        assert not signed_in(response), f"{STAFF_UID} still signs in after leaving the directory"
        with pytest.raises(Exception):
            api_as(lab, base_url, STAFF_UID, staff_password)
    finally:
        # Back as it was: the seed adds the person again (same password,
        # from the pillar), the sync enables their Zabbix user.
        applied = lab.salt(mon1, "state.apply", "openldap.seed", timeout=600).get(mon1) or {}
        assert isinstance(applied, dict) and all(s.get("result") for s in applied.values()), applied
        sync(lab, mon1)
        wait_for(lambda: api_as(lab, base_url, STAFF_UID, staff_password).logout() is None, 60,
                 f"{STAFF_UID} signs in again after being put back", interval=2)
