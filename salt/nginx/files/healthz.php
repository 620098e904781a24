<?php
// /healthz and /healthz/deep of a web node (installed by salt/nginx; nginx
// runs this one script for both, with fastcgi_param LEMP_HEALTHZ_MODE, in
// PHP-FPM's own `health` pool: salt/phpfpm health_pool, whose open_basedir
// and disable_functions allow only what this script does).
// - /healthz (shallow; what HAProxy routes on): 200 when PHP-FPM runs this
//   script and /etc/lemp-ha/healthz.json is readable. No database query: a
//   database hiccup (the writer in SST, no writer for a few seconds) must
//   never take every web node out of HAProxy at once (issue #14).
// - /healthz/deep (LEMP_HEALTHZ_MODE=deep; Zabbix, the smoke test, orch.deploy):
//   also the application's database answers a query over TLS.
// 503 with the reason otherwise. Both report the release that is current.
// The details (node, release, check, reason: the database's own error text)
// only to whom nginx allows them (fastcgi_param LEMP_HEALTHZ_DETAILS:
// loopback, the load balancers, nginx:lookup:health:details_from); anyone
// else gets {"status": "ok"|"down"} and the code.
header('Content-Type: application/json');
header('Cache-Control: no-store');

function healthz_answer(int $code, array $out): void
{
    http_response_code($code);
    if (($_SERVER['LEMP_HEALTHZ_DETAILS'] ?? '') !== '1') {
        $out = ['status' => $out['status']];
    }
    echo json_encode($out), "\n";
    exit;
}

$cfg = json_decode((string)@file_get_contents('/etc/lemp-ha/healthz.json'), true);
$deep = ($_SERVER['LEMP_HEALTHZ_MODE'] ?? '') === 'deep';
$out = ['status' => 'down', 'node' => gethostname(), 'release' => null, 'check' => $deep ? 'deep' : 'shallow'];
if (!is_array($cfg)) {
    $out['reason'] = 'cannot read /etc/lemp-ha/healthz.json';
    healthz_answer(503, $out);
}
// PHP caches resolved paths (realpath_cache_ttl): without this, the
// `current` symlink would still point at the previous release for minutes.
clearstatcache(true);
// The marker is JSON ({"version": ..., "links": [...]}, lemp_app.marker_text);
// a release marked before that holds only its version.
$marker = $cfg['app_dir'] . '/current/.lemp-ha-release';
if (is_readable($marker)) {
    $text = trim(file_get_contents($marker));
    $data = json_decode($text, true);
    $out['release'] = is_array($data) ? (string)($data['version'] ?? '') : $text;
}
if (!$deep) {
    $out['status'] = 'ok';
    healthz_answer(200, $out);
}
mysqli_report(MYSQLI_REPORT_OFF);
$db = mysqli_init();
$db->options(MYSQLI_OPT_CONNECT_TIMEOUT, (int)$cfg['db_timeout']);
$db->options(MYSQLI_OPT_READ_TIMEOUT, (int)$cfg['db_timeout']);
// TLS as the app: the account REQUIREs SSL; the server is checked against
// the platform CA and its name against db_host (the DB endpoint's certificate).
$flags = 0;
if (($cfg['db_ssl_ca'] ?? '') !== '') {
    $db->ssl_set(null, null, $cfg['db_ssl_ca'], null, null);
    $db->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
    $flags = MYSQLI_CLIENT_SSL;
}
$ok = @$db->real_connect($cfg['db_host'], $cfg['db_user'], $cfg['db_password'], $cfg['db_name'],
                         (int)$cfg['db_port'], null, $flags);
if (!$ok) {
    $out['reason'] = 'database: ' . mysqli_connect_error();
    healthz_answer(503, $out);
}
if (!($res = $db->query('SELECT 1')) || $res->fetch_row()[0] != 1) {
    $out['reason'] = 'database query failed: ' . $db->error;
    healthz_answer(503, $out);
}
$out['status'] = 'ok';
healthz_answer(200, $out);
