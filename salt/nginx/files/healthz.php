<?php
// /healthz of a web node (installed by salt/nginx): 200 only when PHP-FPM
// runs this script AND the application's database answers a query; 503 with
// the reason otherwise. Reports the release that is current.
header('Content-Type: application/json');
header('Cache-Control: no-store');

$cfg = json_decode((string)@file_get_contents('/etc/lemp-ha/healthz.json'), true);
$out = ['status' => 'down', 'node' => gethostname(), 'release' => null];
if (!is_array($cfg)) {
    http_response_code(503);
    $out['reason'] = 'cannot read /etc/lemp-ha/healthz.json';
    echo json_encode($out), "\n";
    exit;
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
mysqli_report(MYSQLI_REPORT_OFF);
$db = mysqli_init();
$db->options(MYSQLI_OPT_CONNECT_TIMEOUT, (int)$cfg['db_timeout']);
$db->options(MYSQLI_OPT_READ_TIMEOUT, (int)$cfg['db_timeout']);
$ok = @$db->real_connect($cfg['db_host'], $cfg['db_user'], $cfg['db_password'], $cfg['db_name'], (int)$cfg['db_port']);
if (!$ok) {
    http_response_code(503);
    $out['reason'] = 'database: ' . mysqli_connect_error();
} elseif (!($res = $db->query('SELECT 1')) || $res->fetch_row()[0] != 1) {
    http_response_code(503);
    $out['reason'] = 'database query failed: ' . $db->error;
} else {
    $out['status'] = 'ok';
}
echo json_encode($out), "\n";
