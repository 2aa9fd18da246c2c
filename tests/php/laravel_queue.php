<?php
// Drives Laravel's real database queue (Debian's php-illuminate-queue, Laravel 8.83) for the
// laravel adapter's tests: every row it touches is written by Illuminate\Queue\DatabaseQueue.
//
//   php laravel_queue.php DATABASE_URL TABLE RETRY_AFTER COMMAND ARGS...
//     push QUEUE COUNT [DELAY_SECONDS]   -> pushes COUNT jobs (later() when DELAY > 0)
//     pop QUEUE COUNT                    -> reserves up to COUNT jobs as a worker does
//     finish QUEUE COUNT                 -> reserves and deletes (a job that succeeded)
//     release QUEUE DELAY                -> reserves one job and releases it with a delay
//     schema                             -> creates TABLE with Laravel's own migration
// Prints one JSON document: {"ids": [...]} (or {"created": TABLE}).
require '/usr/share/php/Illuminate/Database/autoload.php';
require '/usr/share/php/Illuminate/Queue/autoload.php';

use Illuminate\Container\Container;
use Illuminate\Database\Capsule\Manager as Capsule;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Queue\DatabaseQueue;

[$url, $table, $retryAfter, $command] = array_slice($argv, 1, 4);
$args = array_slice($argv, 5);
$parts = parse_url($url);
$capsule = new Capsule();
$capsule->addConnection([
    'driver' => 'pgsql',
    'host' => $parts['host'] ?? '127.0.0.1',
    'port' => $parts['port'] ?? 5432,
    'database' => ltrim($parts['path'], '/'),
    'username' => $parts['user'] ?? 'postgres',
    'password' => $parts['pass'] ?? '',
    'charset' => 'utf8',
    'prefix' => '',
    'schema' => 'public',
]);
$connection = $capsule->getConnection();

if ($command === 'schema') {
    // laravel/laravel database/migrations/0001_01_01_000002_create_jobs_table.php
    $connection->getSchemaBuilder()->create($table, function (Blueprint $t) {
        $t->bigIncrements('id');
        $t->string('queue')->index();
        $t->longText('payload');
        $t->unsignedTinyInteger('attempts');
        $t->unsignedInteger('reserved_at')->nullable();
        $t->unsignedInteger('available_at');
        $t->unsignedInteger('created_at');
    });
    echo json_encode(['created' => $table]), "\n";
    exit(0);
}

$queue = new DatabaseQueue($connection, $table, 'default', (int) $retryAfter);
$queue->setContainer(new Container());
$ids = [];
switch ($command) {
    case 'push':
        [$name, $count] = $args;
        $delay = (int) ($args[2] ?? 0);
        for ($i = 0; $i < (int) $count; $i++) {
            $ids[] = $delay > 0
                ? $queue->later($delay, 'App\\Jobs\\SendEmail', ['n' => $i], $name)
                : $queue->push('App\\Jobs\\SendEmail', ['n' => $i], $name);
        }
        break;
    case 'pop':
    case 'finish':
        [$name, $count] = $args;
        for ($i = 0; $i < (int) $count && ($job = $queue->pop($name)); $i++) {
            $ids[] = (int) $job->getJobId();
            if ($command === 'finish') {
                $job->delete();
            }
        }
        break;
    case 'release':
        [$name, $delay] = $args;
        if ($job = $queue->pop($name)) {
            $job->release((int) $delay);
            $ids[] = (int) $job->getJobId();
        }
        break;
    default:
        fwrite(STDERR, "unknown command $command\n");
        exit(2);
}
echo json_encode(['ids' => $ids]), "\n";
