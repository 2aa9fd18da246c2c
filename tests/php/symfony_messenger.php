<?php
// Drives Symfony Messenger's real Doctrine transport (Debian's php-symfony-doctrine-messenger,
// Symfony 5.4, on php-doctrine-dbal) for the symfony_messenger adapter's tests: every row it
// touches is written by Symfony\Component\Messenger\Bridge\Doctrine\Transport\Connection.
//
//   php symfony_messenger.php DATABASE_URL TABLE QUEUE REDELIVER_TIMEOUT COMMAND ARGS...
//     setup                 -> the transport creates TABLE itself (auto_setup's schema)
//     send COUNT [DELAY_MS] -> sends COUNT messages (a DelayStamp when DELAY_MS > 0)
//     get COUNT             -> a worker receives up to COUNT messages (sets delivered_at)
//     finish COUNT          -> receives and acknowledges (the row is deleted)
// PHP's default time zone is $PHP_TZ (UTC when unset): 5.4 writes times in it.
// Prints one JSON document: {"ids": [...]}.
require '/usr/share/php/Doctrine/DBAL/autoload.php';
require '/usr/share/php/Symfony/Component/Messenger/autoload.php';
require '/usr/share/php/Symfony/Component/Messenger/Bridge/Doctrine/autoload.php';

use Doctrine\DBAL\DriverManager;
use Symfony\Component\Messenger\Bridge\Doctrine\Transport\Connection;

date_default_timezone_set(getenv('PHP_TZ') ?: 'UTC');
[$url, $table, $queueName, $redeliverTimeout, $command] = array_slice($argv, 1, 5);
$args = array_slice($argv, 6);
$parts = parse_url($url);
$dbal = DriverManager::getConnection([
    'driver' => 'pdo_pgsql',
    'host' => $parts['host'] ?? '127.0.0.1',
    'port' => $parts['port'] ?? 5432,
    'dbname' => ltrim($parts['path'], '/'),
    'user' => $parts['user'] ?? 'postgres',
    'password' => $parts['pass'] ?? '',
]);
$transport = new Connection([
    'table_name' => $table,
    'queue_name' => $queueName,
    'redeliver_timeout' => (int) $redeliverTimeout,
    'auto_setup' => false,
], $dbal);

$ids = [];
switch ($command) {
    case 'setup':
        $transport->setup();
        break;
    case 'send':
        $delay = (int) ($args[1] ?? 0);
        for ($i = 0; $i < (int) $args[0]; $i++) {
            $ids[] = (int) $transport->send('{"n":' . $i . '}', ['type' => 'App\\Message\\Email'], $delay);
        }
        break;
    case 'get':
    case 'finish':
        for ($i = 0; $i < (int) $args[0] && ($envelope = $transport->get()); $i++) {
            $ids[] = (int) $envelope['id'];
            if ($command === 'finish') {
                $transport->ack((string) $envelope['id']);
            }
        }
        break;
    default:
        fwrite(STDERR, "unknown command $command\n");
        exit(2);
}
echo json_encode(['ids' => $ids]), "\n";
