import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { DEPENDENCIES, POLICY_SETTINGS, envSchema } from './env.schema.js';

describe('.env.example', () => {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  const lines = text.split('\n');
  const documented = lines.filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => l.split('=')[0]);

  it('lists every variable of the schema, and nothing else', () => {
    const overrides = new Set(
      DEPENDENCIES.flatMap((d) => Object.keys(POLICY_SETTINGS).map((k) => `${d.toUpperCase()}_${k}`)),
    );
    const plain = Object.keys(envSchema.shape).filter((k) => !overrides.has(k));
    expect([...documented].sort()).toEqual(plain.sort());
    // Per-dependency overrides are a documented pattern rather than 64 lines.
    expect(text).toContain('POSTS_BREAKER_COOLDOWN_MS');
  });

  it('gives each variable a one-line comment with its default', () => {
    for (const name of documented) {
      const index = lines.findIndex((l) => l.startsWith(`${String(name)}=`));
      expect(lines[index - 1]).toMatch(/^# .+Default: .+$/);
    }
  });

  it('parses as a valid configuration', () => {
    const env = Object.fromEntries(
      lines.filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    expect(envSchema.safeParse(env).success).toBe(true);
  });
});
