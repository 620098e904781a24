<?php
// Written by Salt (salt/phpfpm); the pool's auto_prepend_file. Keeps a PHP
// session through a Redis failover: docs/sessions.md, "During a Redis
// failover".
//
// With session.use_strict_mode, PHP first asks the save handler whether the
// cookie's session id exists, and issues a new id (a new, empty session, a new
// cookie) when the answer is no. phpredis 5.3.7 answers no for every error
// too: a connection that the dying master's kernel accepted and then reset
// (measured on the lab: 3 to 5 of 6 clients lost their session in 2 of 4 hard
// kills of the master's node). This handler asks Redis itself (EXISTS, with
// the address and login of session.save_path) and answers no only when Redis
// says so. When Redis does not answer, the id is kept, and the read that
// follows decides; it is tried again twice, half a second apart, and if it
// still fails, that one page has no session and the next page has it again.
// Everything else is phpredis's own handler (SessionHandler wraps it). An
// app that sets its own handler replaces this one.

namespace LempHa;

final class RedisSessionHandler extends \SessionHandler implements \SessionUpdateTimestampHandlerInterface
{
    // A read that fails (the master's death, no master yet) is tried again
    // after a pause: the next connection goes to the new master, or waits
    // for it on the load balancers (redis-hold).
    private const READ_TRIES = 3;
    private const READ_PAUSE_US = 500000;

    public function validateId(string $id): bool
    {
        return sessionExists($id) ?? true;
    }

    public function read(string $id): string|false
    {
        for ($try = 1; ; $try++) {
            try {
                $data = parent::read($id);
                if ($data !== false || $try >= self::READ_TRIES) {
                    return $data;
                }
            } catch (\RedisException $e) {
                if ($try >= self::READ_TRIES) {
                    throw $e;
                }
            }
            usleep(self::READ_PAUSE_US);
        }
    }

    public function updateTimestamp(string $id, string $data): bool
    {
        return parent::write($id, $data);
    }
}

/** True or false as Redis answers EXISTS for the session; null when it did not answer. */
function sessionExists(string $id): ?bool
{
    $url = parse_url((string) ini_get('session.save_path'));
    if (!is_array($url) || empty($url['host'])) {
        return null;
    }
    parse_str($url['query'] ?? '', $query);
    try {
        $redis = new \Redis();
        if (!$redis->connect($url['host'], (int) ($url['port'] ?? 6379), (float) ($query['timeout'] ?? 2), null, 0,
                             (float) ($query['read_timeout'] ?? 5))) {
            return null;
        }
        if (isset($query['auth']) && !$redis->auth($query['auth'])) {
            return null;
        }
        $found = $redis->exists(($query['prefix'] ?? 'PHPREDIS_SESSION:') . $id);
        $redis->close();
        return is_int($found) ? $found > 0 : null;
    } catch (\Throwable $e) {
        return null;
    }
}

if (ini_get('session.save_handler') === 'redis' && extension_loaded('redis')) {
    session_set_save_handler(new RedisSessionHandler(), true);
}
