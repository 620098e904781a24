"""Issue #10: headless Chromium (Debian's `chromium`, on the host) logs in to
the Zabbix UI on mon1 and saves a screenshot of the "Platform overview"
dashboard (the default dashboard when that one does not exist yet), as a
test artifact: $LEMP_HA_ARTIFACTS, else /var/tmp/lemp-ha-artifacts
(nothing under .ci/ or tools/lab/ names an artifacts folder yet).

The log-in is the form's, over real HTTPS with `requests` (the lab CA
only): it yields the `zbx_session` cookie, which Chromium receives over the
DevTools protocol (tests/lab/browser_helpers.py: no cookie flag exists).
Chromium talks only to mon1's address, after the `lab` fixture and
`require_route` checked that it is routed over the lab bridge, and trusts
only the key of the certificate Python verified against the lab CA.
"""

import os
import pathlib
import re
import ssl
import time

import pytest
from zabbix_utils import ZabbixAPI

import browser_helpers as bh

ARTIFACTS = pathlib.Path(os.environ.get("LEMP_HA_ARTIFACTS", "/var/tmp/lemp-ha-artifacts"))
DASHBOARD = "Platform overview"
# A Zabbix dashboard at 1600 px: a few hundred colours (widgets, graphs,
# text anti-aliasing); a blank or error page has a handful.
MIN_COLOURS = 64
MIN_BYTES = 30_000


@pytest.fixture(scope="module")
def mon1(lab):
    monitors = lab.with_role("monitor")
    assert monitors, "the topology has no machine with role monitor"
    return monitors[0]


def dashboard_url(lab, address):
    """The overview dashboard's URL, or the default dashboard's."""
    api = ZabbixAPI(url=f"https://{address}/api_jsonrpc.php",
                    ssl_context=ssl.create_default_context(cafile=lab.ca_cert_path))
    api.login(user="Admin", password=lab.secrets["passwords"]["zabbix_admin"])
    try:
        found = api.dashboard.get(output=["dashboardid", "name"], filter={"name": DASHBOARD})
    finally:
        api.logout()
    base = f"https://{address}/zabbix.php?action=dashboard.view"
    return (f"{base}&dashboardid={found[0]['dashboardid']}", DASHBOARD) if found else (base, "Global view")


def zabbix_session(lab, address):
    """Log in through the UI's form, as a person does; the session cookie."""
    session = lab.new_session()
    page = session.post(f"https://{address}/index.php", timeout=30, data={
        "name": "Admin", "password": lab.secrets["passwords"]["zabbix_admin"], "autologin": "0",
        "enter": "Sign in"})
    page.raise_for_status()
    cookie = session.cookies.get("zbx_session")
    assert cookie, f"no zbx_session cookie after the login form (HTTP {page.status_code}, {page.url})"
    assert "action=dashboard" in page.url or "zabbix.php" in page.url, \
        f"the login form did not lead to the UI: {page.url}: {page.text[:500]}"
    return cookie


def test_chromium_logs_in_and_saves_a_screenshot_of_the_dashboard(lab, mon1):
    address = lab.machines[mon1]["address"]
    lab.require_route(address)
    url, shown = dashboard_url(lab, address)
    pin = bh.spki_sha256(address, 443, lab.ca_cert_path)
    cookie = zabbix_session(lab, address)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"zabbix-dashboard-{time.strftime('%Y%m%d-%H%M%S')}.png"
    with bh.Chromium(spki=[pin], window=(1600, 1000)) as browser:
        browser.set_cookie("zbx_session", cookie, address)
        browser.navigate(url)
        # the dashboard, not the login form; every widget loaded (Zabbix 6.0
        # marks a loading widget with .is-loading)
        browser.wait_for_js(
            "document.readyState === 'complete' && !document.querySelector('input[name=password]')"
            " && document.querySelectorAll('.dashboard-grid-widget').length > 0"
            " && document.querySelectorAll('.is-loading').length === 0", 90,
            f"the {shown} dashboard with its widgets loaded in Chromium")
        title = browser.evaluate("document.title")
        data = browser.screenshot(str(path))
    print(f"screenshot of {shown!r} ({url}, title {title!r}): {path}")

    assert re.search(r"dashboard", title, re.I), f"Chromium shows {title!r}, not a dashboard"
    assert len(data) >= MIN_BYTES, f"{path}: {len(data)} bytes, a blank page?"
    colours = bh.png_colours(data)
    assert colours >= MIN_COLOURS, f"{path}: only {colours} colours, a blank or error page?"
