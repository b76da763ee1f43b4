/**
 * Migration CLI: `node dist/database/migrate.cli.js run|revert|show`
 * (npm run migration:run / migration:revert / migration:show).
 *
 * Uses the service's own configuration: DATABASE_URL, or, when it is unset, the
 * embedded PGlite database in PGLITE_DATA_DIR. PGlite is single-process: do not
 * run this against a data folder that a running service has open.
 *
 * Exit codes: 0 done, 1 failed (one line on stderr), 2 bad usage.
 */
import { MigrationExecutor } from 'typeorm';
import { loadConfig } from '../config/load-config.js';
import { fail, useCliLogger } from './cli-support.js';
import { Database } from './database.js';

const COMMANDS = ['run', 'revert', 'show'] as const;
type Command = (typeof COMMANDS)[number];
const USAGE = `usage: migrate.cli.js ${COMMANDS.join('|')}`;

function parseCommand(argv: readonly string[]): Command {
  const [command, ...extra] = argv;
  if (argv.length === 1 && (command === '-h' || command === '--help')) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (command === undefined || extra.length > 0 || !(COMMANDS as readonly string[]).includes(command)) {
    process.stderr.write(command === undefined ? `${USAGE}\n` : `unknown arguments: ${argv.join(' ')}; ${USAGE}\n`);
    process.exit(2);
  }
  return command as Command;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

async function run(db: Database): Promise<void> {
  const applied = await db.dataSource.runMigrations({ transaction: 'each' });
  if (applied.length === 0) say('no pending migrations');
  for (const migration of applied) say(`applied ${migration.name}`);
}

async function revert(db: Database): Promise<void> {
  const executor = new MigrationExecutor(db.dataSource);
  const before = await executor.getExecutedMigrations();
  await db.dataSource.undoLastMigration({ transaction: 'each' });
  const after = new Set((await executor.getExecutedMigrations()).map((m) => m.name));
  const reverted = before.filter((m) => !after.has(m.name));
  if (reverted.length === 0) say('no applied migrations to revert');
  for (const migration of reverted) say(`reverted ${migration.name}`);
}

async function show(db: Database): Promise<void> {
  const hasPending = await db.dataSource.showMigrations();
  const executor = new MigrationExecutor(db.dataSource);
  const executed = await executor.getExecutedMigrations();
  const pending = await executor.getPendingMigrations();
  const known = new Set(db.dataSource.migrations.map((m) => m.name ?? m.constructor.name));
  for (const migration of [...executed].sort((a, b) => a.timestamp - b.timestamp)) {
    say(`[X] ${migration.name}${known.has(migration.name) ? '' : ' (not in this build)'}`);
  }
  for (const migration of pending) say(`[ ] ${migration.name}`);
  say(`${String(executed.length)} applied, ${String(pending.length)} pending`);
  // showMigrations() and the listing agree; trust the listing if they ever do not.
  if (hasPending !== pending.length > 0) say('note: TypeORM and the listing disagree on pending migrations');
}

async function main(): Promise<void> {
  const command = parseCommand(process.argv.slice(2));
  useCliLogger();
  const config = loadConfig();
  // This CLI decides what runs: never apply migrations implicitly on open.
  const db = await Database.open({ ...config.database, migrationsRun: false });
  try {
    if (command === 'run') await run(db);
    else if (command === 'revert') await revert(db);
    else await show(db);
  } finally {
    await db.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => fail('migration failed', error),
);
