import cluster from 'node:cluster';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { createLogger } from '../common/logging/logger.factory.js';
import type { AppConfig } from '../config/app-config.js';
import { createDataSource } from '../database/data-source.factory.js';
import { EmbeddedPostgres } from '../database/embedded/embedded-postgres.js';
import { COLLECT_TIMEOUT_MS } from '../metrics/cluster-metrics.protocol.js';
import { startSimulator } from '../upstream/simulator.js';
import { MetricsAggregator, type MetricsPeer } from './metrics-aggregator.js';
import { DEFAULT_RESTART_POLICY } from './restart-policy.js';
import { WorkerSupervisor, type SupervisedWorker, type WorkerExit } from './worker-supervisor.js';

/** Extra time the primary gives workers beyond their own drain delay and grace period. */
const SHUTDOWN_MARGIN_MS = 5000;

/** What stays inside each worker when there is no Redis to share it through. */
const PER_PROCESS_WITHOUT_REDIS = [
  'rate-limit buckets',
  'profile cache',
  'chat rooms and presence (a message reaches only clients on the same worker)',
  '/events replay log and SSE ids',
];

interface SharedResources {
  /** Variables every worker gets on top of the primary's environment. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The cluster primary (`WEB_CONCURRENCY` > 1): it serves no requests. It
 * starts what the workers must share exactly once (the embedded database
 * and its migrations, the upstream simulator), forks the workers, which
 * share the port through node:cluster's round-robin, restarts any that die,
 * merges their metrics for whichever of them is scraped, and on
 * SIGTERM/SIGINT shuts them all down gracefully before it exits.
 */
export async function runPrimary(config: AppConfig): Promise<number> {
  const logger = createLogger(config.log.level);
  const workers = config.cluster.workers;
  let signalled: NodeJS.Signals | undefined;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    for (const name of ['SIGTERM', 'SIGINT'] as const) {
      process.once(name, () => {
        signalled ??= name;
        resolve(name);
      });
    }
  });
  if (config.redisUrl === undefined) {
    logger.warn(
      { workers, perProcess: PER_PROCESS_WITHOUT_REDIS },
      'cluster: REDIS_URL is unset, so each worker keeps its own state; set REDIS_URL to share it',
    );
  }

  const shared = await startShared(config, logger);
  if (signalled !== undefined) {
    logger.info({ signal: signalled }, 'cluster: stopped before any worker started');
    await shared.stop();
    return 0;
  }
  // V8 serialization carries NaN and ±Inf in the metrics (JSON would turn them into null).
  cluster.setupPrimary({ serialization: 'advanced' });
  const metrics = new MetricsAggregator({ timeoutMs: COLLECT_TIMEOUT_MS, logger });
  const supervisor = new WorkerSupervisor({
    workers,
    fork: (slot) => forkWorker(slot, shared.env, logger, metrics),
    restart: DEFAULT_RESTART_POLICY,
    logger,
  });
  supervisor.start();
  logger.info({ workers, port: config.http.port, database: config.database.mode }, 'cluster: primary started');

  const reason = await Promise.race([signal, supervisor.crashLoop.then(() => 'crash loop' as const)]);
  logger.info({ reason, workerPids: supervisor.pids }, 'cluster: stopping workers');
  const inTime = await supervisor.stop(config.shutdown.drainDelayMs + config.shutdown.graceMs + SHUTDOWN_MARGIN_MS);
  await shared.stop();
  const code = reason === 'crash loop' || !inTime ? 1 : 0;
  logger.info({ code }, 'cluster: primary stopped');
  logger.flush();
  return code;
}

function forkWorker(
  slot: number,
  env: Record<string, string>,
  logger: Logger,
  metrics: MetricsAggregator,
): SupervisedWorker {
  const worker = cluster.fork(env);
  worker.on('error', (err: Error) => {
    logger.warn({ err, workerPid: worker.process.pid }, 'cluster: worker channel error');
  });
  const peer: MetricsPeer = {
    slot,
    pid: worker.process.pid,
    send: (message) => worker.isConnected() && worker.send(message),
  };
  worker.on('message', (message: unknown) => metrics.receive(peer, message));
  // Asked for its metrics once it listens (its handler is installed by then), no longer once it exits.
  worker.once('listening', () => metrics.attach(peer));
  worker.once('exit', () => metrics.detach(peer));
  return {
    pid: worker.process.pid,
    kill: (signal) => {
      if (worker.process.exitCode === null && worker.process.signalCode === null) worker.process.kill(signal);
    },
    exited: once(worker, 'exit').then(([code, signal]): WorkerExit => ({
      code: code as number | null,
      signal: signal as string | null,
    })),
  };
}

/**
 * Starts the embedded database (sized for every worker's pool) and applies
 * migrations once, before any worker runs, so N workers never race on them;
 * starts one upstream simulator when an upstream URL is unset.
 */
async function startShared(config: AppConfig, logger: Logger): Promise<SharedResources> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
  };
  const env: Record<string, string> = {};
  try {
    const { database } = config;
    let url: string;
    if (database.mode === 'embedded') {
      const embedded = new EmbeddedPostgres({
        dataDir: database.dataDir,
        port: database.port,
        // Every worker's pool, plus room for a migration CLI or a probe.
        maxConnections: config.cluster.workers * database.pool.size + 2,
      });
      url = await embedded.start();
      stops.push(() => embedded.stop());
      logger.info(
        { port: embedded.port, dataDir: database.dataDir },
        'cluster: embedded PostgreSQL (PGlite) started for the workers',
      );
    } else {
      url = database.url;
    }
    env['DATABASE_URL'] = url;
    // Workers reach the embedded database by URL, but its connections still share one session.
    if (database.mode === 'embedded') env['DB_NAMED_STATEMENTS'] = 'false';
    if (database.migrationsRun) await runMigrations(url, config, logger);
    env['DB_MIGRATIONS_RUN'] = 'false';

    const { postsUrl, commentsUrl } = config.upstreams;
    if (postsUrl === undefined || commentsUrl === undefined) {
      const simulator = await startSimulator({ host: '127.0.0.1', port: 0 });
      stops.push(() => simulator.close());
      logger.info({ url: simulator.url }, 'cluster: upstream simulator started for the workers');
      env['POSTS_SERVICE_URL'] = postsUrl ?? simulator.url;
      env['COMMENTS_SERVICE_URL'] = commentsUrl ?? simulator.url;
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { env, stop };
}

async function runMigrations(url: string, config: AppConfig, logger: Logger): Promise<void> {
  const dataSource = createDataSource({ url, pool: { ...config.database.pool, size: 1 } });
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    if (applied.length > 0) logger.info({ migrations: applied.map((m) => m.name) }, 'cluster: applied migrations');
  } finally {
    await dataSource.destroy();
  }
}
