import { describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { QueryFailedError } from 'typeorm';
import {
  databaseUnavailableReason,
  isDatabaseUnavailable,
  uniqueViolation,
  type UnavailableReason,
} from './database.errors.js';

/** A pg DatabaseError as pg-protocol builds it from a server's ErrorResponse. */
function pgError(
  code: string,
  message: string,
  fields: { severity?: string; routine?: string; file?: string; constraint?: string } = {},
): pg.DatabaseError {
  const error = new pg.DatabaseError(message, message.length + 40, 'error');
  error.severity = fields.severity ?? 'ERROR';
  error.code = code;
  if (fields.routine !== undefined) error.routine = fields.routine;
  if (fields.file !== undefined) error.file = fields.file;
  if (fields.constraint !== undefined) error.constraint = fields.constraint;
  return error;
}

/** What TypeORM throws when a query fails: the driver error wrapped, its fields copied. */
const queryFailed = (driverError: Error) => new QueryFailedError('SELECT 1', [], driverError);

/** A Node system error as net.connect reports it. */
function systemError(code: string, syscall: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code, errno: -1, syscall });
}

const fatal = { severity: 'FATAL' };

const unavailable: [string, unknown, UnavailableReason][] = [
  // The socket: refused, reset, lost, unreachable.
  ['ECONNREFUSED', systemError('ECONNREFUSED', 'connect', 'connect ECONNREFUSED 127.0.0.1:5432'), 'connection'],
  ['ECONNRESET', systemError('ECONNRESET', 'read', 'read ECONNRESET'), 'connection'],
  ['EPIPE', systemError('EPIPE', 'write', 'This socket has been ended by the other party'), 'connection'],
  ['EHOSTUNREACH', systemError('EHOSTUNREACH', 'connect', 'connect EHOSTUNREACH 10.0.0.9:5432'), 'connection'],
  ['ENETUNREACH', systemError('ENETUNREACH', 'connect', 'connect ENETUNREACH 10.0.0.9:5432'), 'connection'],
  [
    'ENOTFOUND (db host not resolvable yet)',
    systemError('ENOTFOUND', 'getaddrinfo', 'getaddrinfo ENOTFOUND db'),
    'connection',
  ],
  ['EAI_AGAIN', systemError('EAI_AGAIN', 'getaddrinfo', 'getaddrinfo EAI_AGAIN db'), 'connection'],
  ['ETIMEDOUT', systemError('ETIMEDOUT', 'connect', 'connect ETIMEDOUT 10.0.0.9:5432'), 'timeout'],
  [
    'ENOENT on a Unix-socket connect',
    systemError('ENOENT', 'connect', 'connect ENOENT /var/run/postgresql/.s.PGSQL.5432'),
    'connection',
  ],
  [
    'AggregateError of refused addresses (happy eyeballs)',
    new AggregateError(
      [
        systemError('ECONNREFUSED', 'connect', 'connect ECONNREFUSED ::1:5432'),
        systemError('ECONNREFUSED', 'connect', 'connect ECONNREFUSED 127.0.0.1:5432'),
      ],
      '',
    ),
    'connection',
  ],
  // pg and pg-pool, code-less.
  ['pg-pool checkout timeout', new Error('timeout exceeded when trying to connect'), 'timeout'],
  [
    'pg-pool connect timeout',
    new Error('Connection terminated due to connection timeout', {
      cause: new Error('Connection terminated unexpectedly'),
    }),
    'timeout',
  ],
  ["pg client's own connect timer", new Error('timeout expired'), 'timeout'],
  [
    'socket closed under pg (backend killed, server gone)',
    new Error('Connection terminated unexpectedly'),
    'connection',
  ],
  [
    'a client that already lost its connection',
    new Error('Client has encountered a connection error and is not queryable'),
    'connection',
  ],
  ['pg query_timeout', new Error('Query read timeout'), 'timeout'],
  ['a request racing pool.end() at shutdown', new Error('Cannot use a pool after calling end on the pool'), 'shutdown'],
  ['TypeORM after destroy()', new Error('Driver not Connected'), 'shutdown'],
  // Class 08, connection exceptions.
  ['08000 connection_exception', pgError('08000', 'connection exception'), 'connection'],
  ['08006 connection_failure', pgError('08006', 'connection failure', fatal), 'connection'],
  ['08001 cannot connect', pgError('08001', 'could not connect to server', fatal), 'connection'],
  [
    '08P01 (PgBouncer: no more connections allowed)',
    pgError('08P01', 'no more connections allowed', fatal),
    'connection',
  ],
  // Class 57, operator intervention.
  [
    '57P01 pg_terminate_backend / fast shutdown',
    pgError('57P01', 'terminating connection due to administrator command', { ...fatal, routine: 'ProcessInterrupts' }),
    'shutdown',
  ],
  [
    '57P02 crash of another backend',
    pgError('57P02', 'terminating connection because of crash of another server process', fatal),
    'shutdown',
  ],
  ['57P03 starting up', pgError('57P03', 'the database system is starting up', fatal), 'shutdown'],
  ['57P03 shutting down', pgError('57P03', 'the database system is shutting down', fatal), 'shutdown'],
  [
    '57P05 idle_session_timeout',
    pgError('57P05', 'terminating connection due to idle-session timeout', fatal),
    'connection',
  ],
  [
    '25P03 idle_in_transaction_session_timeout',
    pgError('25P03', 'terminating connection due to idle-in-transaction timeout', fatal),
    'connection',
  ],
  ['57014 statement_timeout', pgError('57014', 'canceling statement due to statement timeout'), 'timeout'],
  ['57014 pg_cancel_backend', pgError('57014', 'canceling statement due to user request'), 'timeout'],
  // Class 53, insufficient resources.
  [
    '53300 too many connections for the database',
    pgError('53300', 'too many connections for database "app"', { ...fatal, routine: 'CheckMyDatabase' }),
    'resources',
  ],
  [
    '53300 too many connections for the role',
    pgError('53300', 'too many connections for role "app"', { ...fatal, routine: 'InitializeSessionUserId' }),
    'resources',
  ],
  [
    '53300 reserved slots',
    pgError('53300', 'remaining connection slots are reserved for non-replication superuser connections', fatal),
    'resources',
  ],
  ['53100 disk full', pgError('53100', 'could not extend file: No space left on device'), 'resources'],
  ['53200 out of memory', pgError('53200', 'out of memory'), 'resources'],
  ['53000 insufficient resources', pgError('53000', 'insufficient resources'), 'resources'],
  // 55000 at connect: ALTER DATABASE … ALLOW_CONNECTIONS false.
  [
    '55000 FATAL at connect',
    pgError('55000', 'database "app" is not currently accepting connections', {
      ...fatal,
      routine: 'CheckMyDatabase',
      file: 'postinit.c',
    }),
    'not_accepting',
  ],
  [
    '55000 FATAL (severity alone)',
    pgError('55000', 'database "app" is not currently accepting connections', fatal),
    'not_accepting',
  ],
  [
    '55000 from a server with localised messages (routine still tells)',
    pgError('55000', 'Datenbank »app« akzeptiert gegenwärtig keine Verbindungen', {
      severity: 'SCHWERWIEGEND',
      routine: 'CheckMyDatabase',
    }),
    'not_accepting',
  ],
  // Lost races: retrying is the remedy.
  ['55P03 lock_not_available', pgError('55P03', 'could not obtain lock on row in relation "users"'), 'contention'],
  [
    '40001 serialization_failure',
    pgError('40001', 'could not serialize access due to concurrent update'),
    'contention',
  ],
  ['40P01 deadlock_detected', pgError('40P01', 'deadlock detected'), 'contention'],
  // A standby after failover.
  ['25006 read-only server', pgError('25006', 'cannot execute INSERT in a read-only transaction'), 'read_only'],
  // Wrapped as the app sees them.
  [
    'QueryFailedError around 57P01',
    queryFailed(pgError('57P01', 'terminating connection due to administrator command', fatal)),
    'shutdown',
  ],
  [
    'QueryFailedError around 57014',
    queryFailed(pgError('57014', 'canceling statement due to statement timeout')),
    'timeout',
  ],
  ['QueryFailedError around a lost socket', queryFailed(new Error('Connection terminated unexpectedly')), 'connection'],
  [
    'an Error whose cause is the driver error',
    new Error('load failed', { cause: pgError('53300', 'sorry, too many clients already', fatal) }),
    'resources',
  ],
  [
    'a plain object with driverError',
    { message: 'query failed', driverError: pgError('08006', 'connection failure') },
    'connection',
  ],
];

const notUnavailable: [string, unknown][] = [
  [
    '23505 unique violation',
    queryFailed(pgError('23505', 'duplicate key value violates unique constraint "users_email_key"')),
  ],
  ['23503 foreign key violation', pgError('23503', 'insert or update violates foreign key constraint')],
  ['23502 not null violation', pgError('23502', 'null value in column "name" violates not-null constraint')],
  ['42601 syntax error', queryFailed(pgError('42601', 'syntax error at or near "selec"'))],
  ['42P01 undefined table', pgError('42P01', 'relation "users" does not exist')],
  ['42703 undefined column', pgError('42703', 'column "nope" does not exist')],
  ['22P02 invalid input', pgError('22P02', 'invalid input syntax for type integer: "x"')],
  // Configuration, not availability: a retry gets the same answer.
  [
    '3D000 database does not exist',
    pgError('3D000', 'database "nope" does not exist', { ...fatal, routine: 'InitPostgres' }),
  ],
  ['28P01 bad password', pgError('28P01', 'password authentication failed for user "app"', fatal)],
  ['28000 no pg_hba entry', pgError('28000', 'no pg_hba.conf entry for host "10.0.0.9"', fatal)],
  ['42501 permission denied', pgError('42501', 'permission denied for table users')],
  ['57P04 database dropped', pgError('57P04', 'terminating connection because the database was dropped', fatal)],
  ['53400 temp_file_limit', pgError('53400', 'temporary file size exceeds temp_file_limit (1024kB)')],
  [
    '55000 from a statement (currval before nextval)',
    pgError('55000', 'currval of sequence "s" is not yet defined in this session', { routine: 'currval_oid' }),
  ],
  ['40003 statement completion unknown (retrying could apply twice)', pgError('40003', 'statement completion unknown')],
  // A code wins over the message: these texts come from the server, not the driver.
  [
    'a coded error that only mentions a timeout',
    pgError('P0001', 'connection terminated by the application: timeout expired'),
  ],
  ['ENOENT from a file read', systemError('ENOENT', 'open', "ENOENT: no such file or directory, open 'ca.pem'")],
  ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'id')")],
  ['an app Error', new Error('INSERT returned no row')],
  ['a string', 'connection terminated'],
  ['undefined', undefined],
  ['null', null],
];

describe('databaseUnavailableReason', () => {
  it.each(unavailable.map(([name, error, reason]) => ({ name, error, reason })))(
    '$name → $reason',
    ({ error, reason }) => {
      expect(databaseUnavailableReason(error)).toBe(reason);
      expect(isDatabaseUnavailable(error)).toBe(true);
    },
  );

  it.each(notUnavailable.map(([name, error]) => ({ name, error })))('$name → not unavailable', ({ error }) => {
    expect(databaseUnavailableReason(error)).toBeUndefined();
    expect(isDatabaseUnavailable(error)).toBe(false);
  });

  it('ends on a cyclic cause chain', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect(isDatabaseUnavailable(a)).toBe(false);
  });
});

describe('uniqueViolation', () => {
  it('finds the constraint on the error or its driver error', () => {
    expect(uniqueViolation(pgError('23505', 'dup', { constraint: 'users_email_lower_key' }))).toBe(
      'users_email_lower_key',
    );
    expect(uniqueViolation(queryFailed(pgError('23505', 'dup', { constraint: 'c' })))).toBe('c');
    expect(uniqueViolation({ driverError: { code: '23505', constraint: 'c' } })).toBe('c');
    expect(uniqueViolation(pgError('23503', 'other'))).toBeUndefined();
  });
});
