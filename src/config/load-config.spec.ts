import { describe, expect, it } from '@jest/globals';
import { ConfigError } from './config.error.js';
import { parseConfig } from './load-config.js';

describe('parseConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = parseConfig({});
    expect(config.http).toMatchObject({
      host: '0.0.0.0',
      port: 3000,
      bodyLimitBytes: 1024 * 1024,
      corsOrigins: null,
      trustProxy: false,
    });
    expect(config.database).toMatchObject({ mode: 'embedded', dataDir: './data/pglite', port: 0, migrationsRun: true });
    expect(config.database.pool).toEqual({
      size: 10,
      connectTimeoutMs: 5000,
      idleTimeoutMs: 30000,
      statementTimeoutMs: 10000,
      namedStatements: false,
    });
    expect(config.log).toEqual({ level: 'info', access: true, slowMs: 1000 });
    expect(config.adminToken).toBeUndefined();
  });

  it('turns the access log off by default in production only, and lets LOG_ACCESS decide', () => {
    expect(parseConfig({ NODE_ENV: 'production' }).log.access).toBe(false);
    expect(parseConfig({ NODE_ENV: 'test' }).log.access).toBe(true);
    expect(parseConfig({ NODE_ENV: 'production', LOG_ACCESS: 'true' }).log.access).toBe(true);
    expect(parseConfig({ NODE_ENV: 'development', LOG_ACCESS: 'false' }).log.access).toBe(false);
    expect(parseConfig({ NODE_ENV: 'production', LOG_ACCESS: '' }).log.access).toBe(false);
    expect(parseConfig({ LOG_SLOW_MS: '0' }).log.slowMs).toBe(0);
  });

  it('uses DATABASE_URL when set', () => {
    const config = parseConfig({ DATABASE_URL: 'postgres://u@db:5432/app', DB_POOL_SIZE: '25' });
    expect(config.database).toMatchObject({ mode: 'external', url: 'postgres://u@db:5432/app' });
    expect(config.database.pool.size).toBe(25);
    expect(config.database.pool.namedStatements).toBe(true);
    expect(
      parseConfig({ DATABASE_URL: 'postgres://u@db:5432/app', DB_NAMED_STATEMENTS: 'false' }).database.pool
        .namedStatements,
    ).toBe(false);
  });

  it('treats empty values as unset', () => {
    expect(parseConfig({ DATABASE_URL: '', PORT: '' }).database.mode).toBe('embedded');
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT must be an integer between 0 and 65535 (got "abc")'],
    [{ PORT: '70000' }, 'PORT must be an integer between 0 and 65535'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    [{ LOG_ACCESS: 'maybe' }, 'LOG_ACCESS must be true or false'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL must be one of'],
    [{ PGLITE_PORT: '5432' }, 'PGLITE_PORT must not be 5432'],
    [{ ADMIN_TOKEN: 'short' }, 'ADMIN_TOKEN must be at least 16 characters'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL must be a redis:// or rediss:// URL'],
  ])('rejects %j with one clear line', (env, expected) => {
    let caught: unknown;
    try {
      parseConfig(env);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as Error).message;
    expect(message).toContain(expected);
    expect(message.startsWith('Invalid configuration: ')).toBe(true);
    expect(message).not.toContain('\n');
  });

  it('resolves per-dependency policy overrides over the defaults', () => {
    const config = parseConfig({
      BREAKER_COOLDOWN_MS: '1000',
      POSTS_BREAKER_COOLDOWN_MS: '50',
      SMTP_RETRY_MAX_ATTEMPTS: '5',
    });
    expect(config.policy('posts').BREAKER_COOLDOWN_MS).toBe(50);
    expect(config.policy('comments').BREAKER_COOLDOWN_MS).toBe(1000);
    expect(config.policy('smtp').RETRY_MAX_ATTEMPTS).toBe(5);
    expect(config.policy('posts').RETRY_MAX_ATTEMPTS).toBe(3);
    expect(config.policy('unknown-dependency').RETRY_BUDGET_RATIO).toBe(0.2);
    expect(() => parseConfig({ POSTS_RETRY_BUDGET_RATIO: '1.5' })).toThrow(
      'POSTS_RETRY_BUDGET_RATIO must be a number between 0 and 1',
    );
  });

  it('hedges posts and comments by default, and takes flags and modes per dependency', () => {
    const config = parseConfig({ COMMENTS_HEDGE_ENABLED: 'false', SMTP_CONCURRENCY: 'adaptive', BREAKER_SHARED: 'no' });
    expect(config.policy('posts')).toMatchObject({ HEDGE_ENABLED: true, HEDGE_DELAY_MS: 0, HEDGE_BUDGET_PERCENT: 10 });
    expect(config.policy('comments').HEDGE_ENABLED).toBe(false);
    expect(config.policy('smtp')).toMatchObject({
      HEDGE_ENABLED: false,
      CONCURRENCY: 'adaptive',
      BREAKER_SHARED: false,
    });
    expect(config.policy('database')).toMatchObject({ CONCURRENCY: 'static', ADAPTIVE_TOLERANCE: 1.5 });
    expect(() => parseConfig({ POSTS_CONCURRENCY: 'dynamic' })).toThrow(
      'POSTS_CONCURRENCY must be static (the bulkhead) or adaptive (a learnt limit)',
    );
    expect(() => parseConfig({ ADAPTIVE_SMOOTHING: '0' })).toThrow(
      'ADAPTIVE_SMOOTHING must be a number between 0.01 and 1',
    );
  });

  it('fails at boot on adaptive bounds that cannot hold, naming the dependency', () => {
    expect(() => parseConfig({ POSTS_ADAPTIVE_MIN_LIMIT: '50' })).toThrow(
      'posts: ADAPTIVE_MIN_LIMIT (50) <= ADAPTIVE_INITIAL_LIMIT (20) <= ADAPTIVE_MAX_LIMIT (200) must hold',
    );
    expect(() => parseConfig({ ADAPTIVE_MAX_LIMIT: '10' })).toThrow(
      'ADAPTIVE_INITIAL_LIMIT (20) <= ADAPTIVE_MAX_LIMIT (10)',
    );
    expect(
      parseConfig({ ADAPTIVE_MAX_LIMIT: '10', ADAPTIVE_INITIAL_LIMIT: '5' }).policy('posts').ADAPTIVE_MAX_LIMIT,
    ).toBe(10);
  });

  it('parses CORS origins and booleans', () => {
    expect(parseConfig({ CORS_ORIGINS: 'https://a.example, https://b.example' }).http.corsOrigins).toEqual([
      'https://a.example',
      'https://b.example',
    ]);
    expect(parseConfig({ CORS_ORIGINS: '*' }).http.corsOrigins).toBe('*');
    expect(parseConfig({ LOG_ACCESS: 'FALSE' }).log.access).toBe(false);
    expect(parseConfig({ TRUST_PROXY: '10.0.0.1' }).http.trustProxy).toBe('10.0.0.1');
  });
});
