/**
 * Seed CLI: `npm run seed -- --users N` (node dist/database/seed.cli.js --users N)
 * inserts N realistic users (default 1000) in batched INSERTs.
 *
 * Uses the service's own configuration and runs pending migrations first when
 * DB_MIGRATIONS_RUN is on (the default), so a fresh database works.
 *
 * Embedded default: with DATABASE_URL unset the data lives in PGLITE_DATA_DIR
 * (default ./data/pglite), and PGlite is a single-process database. Do NOT seed
 * while the service (or anything else) has that same folder open: stop it first,
 * or point PGLITE_DATA_DIR elsewhere, or seed a real server via DATABASE_URL.
 *
 * Emails are unique within a run (index suffix) and across runs (a random run
 * token), so reruns never hit the case-insensitive unique index on lower(email).
 *
 * Exit codes: 0 done, 1 failed (one line on stderr), 2 bad arguments.
 */
import { randomBytes } from 'node:crypto';
import { faker } from '@faker-js/faker';
import cliProgress from 'cli-progress';
import { loadConfig } from '../config/load-config.js';
import { UserEntity } from '../users/user.entity.js';
import { fail, useCliLogger } from './cli-support.js';
import { Database } from './database.js';
import { parseSeedArgs, SEED_USAGE, UsageError, type SeedArgs } from './seed-args.js';

interface SeedUser {
  name: string;
  email: string;
}

/** A realistic name and an email derived from it, made unique by `tag`. */
function fakeUser(tag: string): SeedUser {
  const firstName = faker.person.firstName();
  const lastName = faker.person.lastName();
  const email = faker.internet.email({ firstName, lastName });
  const at = email.lastIndexOf('@');
  return {
    name: `${firstName} ${lastName}`.slice(0, 100),
    email: `${email.slice(0, at)}.${tag}${email.slice(at)}`,
  };
}

interface Progress {
  update(done: number): void;
  stop(): void;
}

/** A bar on a terminal; otherwise a plain line roughly every 10% (and at the end). */
function progress(total: number): Progress {
  if (process.stdout.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: 'seeding users [{bar}] {percentage}% | {value}/{total} | {rate} users/s | ETA {eta_formatted}',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    const started = performance.now();
    bar.start(total, 0, { rate: 0 });
    return {
      update: (done) => {
        bar.update(done, { rate: Math.round(done / ((performance.now() - started) / 1000)) });
      },
      stop: () => {
        bar.stop();
      },
    };
  }
  const step = Math.max(1, Math.ceil(total / 10));
  let nextReport = step;
  return {
    update: (done) => {
      if (done < nextReport && done < total) return;
      process.stdout.write(`seeded ${String(done)}/${String(total)} users\n`);
      nextReport = (Math.floor(done / step) + 1) * step;
    },
    stop: () => {},
  };
}

async function seed(db: Database, args: SeedArgs): Promise<void> {
  const repository = db.dataSource.getRepository(UserEntity);
  const runToken = randomBytes(4).toString('hex');
  const bar = progress(args.users);
  const started = performance.now();
  let done = 0;
  try {
    while (done < args.users) {
      const size = Math.min(args.batchSize, args.users - done);
      const rows: SeedUser[] = [];
      for (let i = 0; i < size; i++) rows.push(fakeUser(`${runToken}-${String(done + i + 1)}`));
      // One parameterised multi-row INSERT per batch; no RETURNING, nothing to read back.
      await repository.createQueryBuilder().insert().into(UserEntity).values(rows).updateEntity(false).execute();
      done += size;
      bar.update(done);
    }
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `seeded ${String(done)} users in ${seconds.toFixed(2)}s (${String(Math.round(done / seconds))} users/s, batches of ${String(args.batchSize)}, ${db.mode} database)\n`,
  );
}

async function main(): Promise<void> {
  let args: SeedArgs;
  try {
    args = parseSeedArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`seed: ${error.message} (see --help)\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(`${SEED_USAGE}\n`);
    process.exit(0);
  }
  useCliLogger();
  const config = loadConfig();
  const db = await Database.open(config.database);
  try {
    await seed(db, args);
  } finally {
    await db.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => fail('seed failed', error),
);
