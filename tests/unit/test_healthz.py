"""The web node's two health checks (issue #14, "SST: the site keeps
serving"): nginx runs salt/nginx/files/healthz.php for /healthz (shallow:
what HAProxy routes on, no database query) and /healthz/deep (the database
over TLS: Zabbix, the smoke test, orch.deploy's gate), with the same details
policy and the same maintenance answer. Who calls which is checked here too.
The lab proof: tests/lab/test_web_lb.py (the database unreachable from one
web node: /healthz 200 and UP in HAProxy, /healthz/deep 503 with the reason)."""

import pathlib
import re

import jinja2
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
NGINX = yaml.safe_load((REPO / "salt" / "nginx" / "defaults.yaml").read_text())["nginx"]
SCRIPT = (REPO / "salt" / "nginx" / "files" / "healthz.php").read_text()


def site():
    template = jinja2.Template((REPO / "salt" / "nginx" / "files" / "site.conf.j2").read_text())
    return template.render(nginx=NGINX, app_dir="/srv/www/app", docroot="public", fpm_socket="/run/php/app.sock",
                           health_socket="/run/php/health.sock", lb_addresses=["10.77.0.11"], healthz_details_from=["127.0.0.1", "10.77.0.11"],
                           client_max_body_size="20m", static_urls=[])


def location(text, uri):
    body = text[text.index(f"location = {uri} {{"):]
    return body[:body.index("\n    }\n")]


def test_nginx_runs_the_one_script_shallow_for_healthz_and_deep_for_healthz_deep():
    text = site()
    shallow, deep = location(text, "/healthz"), location(text, "/healthz/deep")
    script = f"fastcgi_param SCRIPT_FILENAME {NGINX['health']['script_dir']}/healthz.php;"
    for body, mode in ((shallow, "shallow"), (deep, "deep")):
        assert script in body and f"fastcgi_param LEMP_HEALTHZ_MODE {mode};" in body
        # the same details policy, the same 503 when PHP-FPM does not answer
        assert "fastcgi_param LEMP_HEALTHZ_DETAILS $lemp_healthz_details;" in body
        assert "error_page 500 502 504 =503 /healthz-down;" in body
    assert text.count("LEMP_HEALTHZ_MODE") == 2


def test_the_shallow_check_answers_before_any_database_call():
    # anything but "deep" (an nginx not yet reloaded passes no mode) is shallow
    assert "$deep = ($_SERVER['LEMP_HEALTHZ_MODE'] ?? '') === 'deep';" in SCRIPT
    shallow = re.search(r"if \(!\$deep\) \{\n    \$out\['status'\] = 'ok';\n    healthz_answer\(200, \$out\);\n\}",
                        SCRIPT)
    assert shallow, "healthz.php: no shallow answer"
    # before the release is read it still fails on unreadable settings; after it, nothing touches the database
    assert SCRIPT.index("cannot read /etc/lemp-ha/healthz.json") < SCRIPT.index(".lemp-ha-release") < shallow.start()
    assert shallow.end() < min(SCRIPT.index(call) for call in ("mysqli_init", "real_connect", "SELECT 1"))
    assert "'check' => $deep ? 'deep' : 'shallow'" in SCRIPT


def test_haproxy_routes_on_the_shallow_check():
    config = (REPO / "salt" / "haproxy" / "files" / "haproxy.cfg.j2").read_text()
    assert "http-check send meth GET uri /healthz ver HTTP/1.1" in config
    assert "uri /healthz/deep" not in config


def test_the_gates_that_need_the_database_use_the_deep_check():
    smoke = (REPO / "tools" / "smoke-test").read_text()
    assert 'site_url(base, "healthz/deep")' in smoke
    assert '_modules/lemp_healthz.py" wait "https://$vip/healthz/deep"' in (
        REPO / "tools" / "lab" / "cmd_up.sh").read_text()
    for runner in ("lemp_web.py", "lemp_patch.py"):
        assert 'HEALTHZ_URL = "https://127.0.0.1/healthz/deep"' in (REPO / "_runners" / runner).read_text(), runner


# -- Zabbix: a per-node item reading /healthz/deep, and its trigger ------------------

ZABBIX = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
TEMPLATE = yaml.safe_load((REPO / "salt" / "zabbix" / "server" / "files" / "templates" / "lemp-ha-web-health.yaml")
                          .read_text())["zabbix_export"]["templates"][0]


def trigger_pattern(expression):
    """The regexp of count(...,"regexp","<pattern>"), unescaped as Zabbix reads it."""
    quoted = re.search(r',"regexp","((?:[^"\\]|\\.)*)"\)', expression).group(1)
    return re.sub(r'\\(.)', r"\1", quoted)


def test_every_web_node_reads_its_own_deep_check_through_the_agent():
    import lemp_zabbix  # tests/conftest.py puts _modules on the path

    item = TEMPLATE["items"][0]
    assert TEMPLATE["template"] == "lemp-ha Web node health"
    for role in ("web", "web_pool"):
        assert "lemp-ha Web node health" in ZABBIX["server"]["api"]["roles"][role]["templates"], role
        lines = lemp_zabbix.agent_user_parameters([role], ZABBIX["agent"]["user_parameters"],
                                                  {"vip": "10.0.0.9", "fpm_status_url": "http://x"})
        # on loopback (the details, the reason), always one answer and exit 0 (never an unsupported item)
        assert (f"UserParameter={item['key']},curl -ksS --max-time 3 https://127.0.0.1/healthz/deep 2>&1 || true"
                in lines), lines
    assert "location = /healthz/deep {" in site()
    # curl gives up before the agent does
    assert 3 < int(ZABBIX["agent"]["settings"]["Timeout"])
    assert (item["type"], item["delay"], item["value_type"]) == ("ZABBIX_ACTIVE", "10s", "TEXT")


def test_the_trigger_opens_after_three_readings_without_ok_and_names_the_reason():
    item = TEMPLATE["items"][0]
    (trigger,) = item["triggers"]
    expression = trigger["expression"]
    assert expression.startswith(f"count(/{TEMPLATE['template']}/{item['key']},#3,") and expression.endswith(")=0")
    # 3 x 10 s: a database failover or a donor's seconds in SST stay below it; the reason is the opdata
    assert trigger["opdata"] == "{ITEM.LASTVALUE}" and trigger["priority"] == "HIGH"
    pattern = re.compile(trigger_pattern(expression))
    healthy = ['{"status":"ok","node":"web1","release":"1.1.0","check":"deep"}\n', '{"status":"maintenance"}\n']
    failing = ['{"status":"down","node":"web1","release":"1.1.0","check":"deep","reason":"database: refused"}',
               '{"status":"down","reason":"php-fpm does not answer"}',
               "curl: (7) Failed to connect to 127.0.0.1 port 443 after 0 ms: Couldn't connect to server", ""]
    assert all(pattern.search(body) for body in healthy)
    assert not any(pattern.search(body) for body in failing)
