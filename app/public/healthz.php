<?php
// The app's own health: 200 when PHP runs and the database answers, else 503.
// (The platform's /healthz, from salt/nginx, checks the same for any app.)
declare(strict_types=1);
require dirname(__DIR__) . '/src/bootstrap.php';
try {
    app_db()->query('SELECT 1 FROM items LIMIT 1');
    app_json(200, ['status' => 'ok', 'node' => gethostname(), 'version' => app_config()['version']]);
} catch (Throwable $e) {
    app_json(503, ['status' => 'down', 'node' => gethostname(), 'reason' => $e->getMessage()]);
}
