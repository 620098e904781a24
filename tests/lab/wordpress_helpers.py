"""WordPress from Debian's archive as the lab's third-party app: the pillar
a user would write (the example in salt/webapp/examples/wordpress/), its
install over HTTPS and its XML-RPC API. Shared by
tests/lab/test_third_party_app.py and bench/third_party_app.py."""

import pathlib
import ssl
import subprocess
import xmlrpc.client

from test_foundation import orch_failures

REPO = pathlib.Path(__file__).resolve().parents[2]
APP_PILLAR = REPO / "pillar" / "app.sls"
EXAMPLE = REPO / "salt" / "webapp" / "examples" / "wordpress" / "app.sls.example"
NAME = "blog"
ADMIN = "labadmin"
SECRETS = ["auth_key", "secure_auth_key", "logged_in_key", "nonce_key",
           "auth_salt", "secure_auth_salt", "logged_in_salt", "nonce_salt"]


def orch_site(lab):
    """orch.site, which must succeed; its parsed result."""
    rc, result = lab.salt_run("state.orchestrate", "orch.site")
    assert rc == 0 and not orch_failures(result), orch_failures(result)
    return result


def candidate_version(lab, web):
    """The version of Debian's wordpress that the lab's apt archive offers:
    what a user reads with `apt-cache policy wordpress` to pin it."""
    out = lab.run(web, "apt-cache show --no-all-versions wordpress | sed -n 's/^Version: //p'").stdout.strip()
    assert out, "Debian's archive offers no wordpress package to the web nodes"
    return out


def add_secrets():
    """The keys and salts WordPress asks for (app:secrets), made by the lab
    and encrypted on the master like every secret (docs/secrets.md)."""
    subprocess.run([str(REPO / "lab"), "secrets", "add", *SECRETS], check=True)


def write_pillar(lab):
    """pillar/app.sls: the example, pinned to the archive's wordpress."""
    version = candidate_version(lab, lab.with_role("web")[0])
    APP_PILLAR.write_text(EXAMPLE.read_text().replace("@WORDPRESS_VERSION@", version))
    return version


def install(lab, password):
    """WordPress's own installer, over HTTPS through the VIP; the response."""
    http = lab.new_session()
    page = http.get(f"https://{lab.vip}/wp-admin/install.php", timeout=30)
    assert page.status_code == 200 and "install" in page.text.lower(), page.status_code
    return http.post(f"https://{lab.vip}/wp-admin/install.php?step=2", timeout=60, data={
        "weblog_title": "lemp-ha lab", "user_name": ADMIN, "admin_password": password,
        "admin_password2": password, "pw_weak": "on", "admin_email": "ops@example.org",
        "blog_public": "0", "language": "", "Submit": "Install WordPress"})


def wp_api(lab):
    """WordPress's XML-RPC API through the VIP, trusting the lab CA."""
    context = ssl.create_default_context(cafile=lab.ca_cert_path)
    return xmlrpc.client.ServerProxy(f"https://{lab.vip}/xmlrpc.php", context=context)
