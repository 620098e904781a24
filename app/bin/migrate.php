<?php
// Create or update the sample app's schema; safe to run again and from two
// machines at once (every step is idempotent, applied steps are recorded).
//   php bin/migrate.php     (in the release directory)
// Runs as the migration account (schema rights) that salt/webapp/migrate.sls
// passes in LEMP_DB_MIGRATE_USER / LEMP_DB_MIGRATE_PASSWORD; the runtime
// account of config.php may not create tables.
declare(strict_types=1);
require dirname(__DIR__) . '/src/bootstrap.php';

$migrateUser = getenv('LEMP_DB_MIGRATE_USER');
$migratePassword = getenv('LEMP_DB_MIGRATE_PASSWORD');
if ($migrateUser === false || $migrateUser === '' || $migratePassword === false) {
    fwrite(STDERR, "migration failed: LEMP_DB_MIGRATE_USER and LEMP_DB_MIGRATE_PASSWORD are not set "
        . "(salt/webapp/migrate.sls sets them; by hand: the migration account of pillar app:database)\n");
    exit(1);
}

$steps = [
    '001-create-items' => 'CREATE TABLE IF NOT EXISTS items (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        note VARCHAR(255) NOT NULL,
        node VARCHAR(64) NOT NULL,
        version VARCHAR(64) NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
];

try {
    $db = app_db($migrateUser, $migratePassword);
    $db->exec('CREATE TABLE IF NOT EXISTS schema_migrations (
        step VARCHAR(128) NOT NULL PRIMARY KEY,
        applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
    ) ENGINE=InnoDB');
    $done = $db->query('SELECT step FROM schema_migrations')->fetchAll(PDO::FETCH_COLUMN);
    foreach ($steps as $name => $sql) {
        if (in_array($name, $done, true)) {
            echo "migration $name: already applied\n";
            continue;
        }
        $db->exec($sql);
        $db->prepare('INSERT IGNORE INTO schema_migrations (step) VALUES (?)')->execute([$name]);
        echo "migration $name: applied\n";
    }
} catch (Throwable $e) {
    fwrite(STDERR, 'migration failed: ' . $e->getMessage() . "\n");
    exit(1);
}
