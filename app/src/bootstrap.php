<?php
// Sample app of lemp-ha: shared by public/*.php and bin/migrate.php.
declare(strict_types=1);

function app_config(): array
{
    static $cfg = null;
    if ($cfg === null) {
        $file = dirname(__DIR__) . '/config.php';  // written per release by salt/webapp
        if (!is_readable($file)) {
            throw new RuntimeException("missing $file (written by Salt from pillar app:)");
        }
        $cfg = require $file;
    }
    return $cfg;
}

// The database over TLS: the server's certificate is checked against the
// platform CA (ssl_ca) and its name against the host (mysqlnd checks both
// or neither; the DB endpoint's certificate names the internal VIP). The
// runtime account (config.php) holds data rights only; bin/migrate.php
// passes the migration account, which Salt gives it in the environment.
function app_db(?string $user = null, ?string $password = null): PDO
{
    static $pdo = null;
    if ($pdo === null) {
        $db = app_config()['db'];
        $dsn = sprintf('mysql:host=%s;port=%d;dbname=%s;charset=utf8mb4', $db['host'], $db['port'], $db['name']);
        $options = [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_TIMEOUT => 3,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
        ];
        if (($db['ssl_ca'] ?? '') !== '') {
            $options[PDO::MYSQL_ATTR_SSL_CA] = $db['ssl_ca'];
            $options[PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT] = true;
        }
        $pdo = new PDO($dsn, $user ?? $db['user'], $password ?? $db['password'], $options);
    }
    return $pdo;
}

function app_json(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    header('Cache-Control: no-store');
    echo json_encode($body, JSON_UNESCAPED_SLASHES), "\n";
}
