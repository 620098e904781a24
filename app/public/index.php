<?php
// Sample app: one page + a small JSON API for the tests.
//   GET  /                 page (HTML); /?format=json: the same as JSON
//   GET  /api/info         node, version, session counter (+1 per request)
//   POST /api/items        body: {"note": "..."} -> {"id": N, ...}
//   GET  /api/items/N      the row written by POST
//   GET  /api/work?ms=N    keeps a PHP-FPM worker busy on CPU for N ms (<= 2000): load for the scaling tests
//                          (&cpu=0: busy without a core, usleep)
declare(strict_types=1);
require dirname(__DIR__) . '/src/bootstrap.php';

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';

function info(): array
{
    // A session store outage (a Redis failover takes a few seconds) must not
    // fail the page: report it instead. phpredis throws rather than warns.
    $counter = null;
    try {
        $sessionOk = @session_start();
        if ($sessionOk) {
            $_SESSION['counter'] = ($_SESSION['counter'] ?? 0) + 1;
            $counter = $_SESSION['counter'];
            $sessionOk = @session_write_close();
        }
    } catch (Throwable $e) {
        error_log('app: session store unavailable: ' . $e->getMessage());
        $sessionOk = false;
        $counter = null;
    }
    return [
        'app' => app_config()['app'],
        'version' => app_config()['version'],
        'node' => gethostname(),
        'session_counter' => $counter,
        'session_ok' => $sessionOk,
        'session_id' => session_id(),
    ];
}

try {
    if ($path === '/api/info' && $method === 'GET') {
        app_json(200, info());
    } elseif ($path === '/api/items' && $method === 'POST') {
        $in = json_decode((string)file_get_contents('php://input'), true);
        $note = is_array($in) && is_string($in['note'] ?? null) ? $in['note'] : null;
        if ($note === null || strlen($note) > 255) {
            app_json(400, ['error' => 'body must be JSON {"note": "<at most 255 characters>"}']);
        } else {
            $stmt = app_db()->prepare('INSERT INTO items (note, node, version) VALUES (?, ?, ?)');
            $stmt->execute([$note, gethostname(), app_config()['version']]);
            app_json(201, ['id' => (int)app_db()->lastInsertId(), 'note' => $note, 'node' => gethostname()]);
        }
    } elseif (preg_match('#^/api/items/(\d+)$#', $path, $m) && $method === 'GET') {
        $stmt = app_db()->prepare('SELECT id, note, node, version, created_at FROM items WHERE id = ?');
        $stmt->execute([(int)$m[1]]);
        $row = $stmt->fetch();
        $row ? app_json(200, $row + ['read_by' => gethostname()]) : app_json(404, ['error' => "no item {$m[1]}"]);
    } elseif ($path === '/api/work' && $method === 'GET') {
        // A busy PHP-FPM worker for ms: on CPU by default, as real load is
        // (bench/scale_events.py); cpu=0 holds it without a core (usleep), so
        // that the lab test of autoscaling (tests/lab/test_scaling_auto.py)
        // does not starve the VM it boots on a 2-core host.
        $ms = max(0, min(2000, (int)($_GET['ms'] ?? 100)));
        $rounds = 0;
        if (($_GET['cpu'] ?? '1') === '0') {
            usleep($ms * 1000);
        } else {
            $until = hrtime(true) + $ms * 1000000;
            $hash = '';
            while (hrtime(true) < $until) {
                $hash = hash('sha256', $hash . $rounds++);
            }
        }
        app_json(200, ['node' => gethostname(), 'ms' => $ms, 'rounds' => $rounds]);
    } elseif ($path === '/' && $method === 'GET') {
        $info = info();
        $count = (int)app_db()->query('SELECT COUNT(*) FROM items')->fetchColumn();
        $info['items'] = $count;
        if (($_GET['format'] ?? '') === 'json') {
            app_json(200, $info);
        } else {
            header('Content-Type: text/html; charset=utf-8');
            $h = fn($v) => htmlspecialchars((string)$v, ENT_QUOTES);
            echo "<!doctype html><title>{$h($info['app'])}</title>",
                "<h1>{$h($info['app'])} {$h($info['version'])}</h1>",
                "<p>Served by <b>{$h($info['node'])}</b>; your visits: {$h($info['session_counter'])};",
                " items in the database: {$h($count)}.</p>\n";
        }
    } else {
        app_json(404, ['error' => "no route $method $path"]);
    }
} catch (Throwable $e) {
    error_log('app: ' . $e->getMessage());
    app_json(503, ['error' => 'service unavailable', 'node' => gethostname()]);
}
