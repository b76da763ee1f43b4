import { it } from '@jest/globals';
import { startTestApp } from '../support/test-app.js';
import { send } from './harness.js';
it('scratch', async () => {
  const t = await startTestApp({}, {});
  for (const [path, method, body] of [
    ['/users', 'POST', `{"name":${'['.repeat(5000)}${']'.repeat(5000)},"email":"a@b.co"}`],
    ['/users', 'POST', `{"name":${'['.repeat(1000)}${']'.repeat(1000)},"email":"a@b.co"}`],
    ['/users', 'POST', `{"x":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)},"email":"a@b.co"}`],
    ['/notifications', 'POST', `{"to":${'['.repeat(5000)}${']'.repeat(5000)}}`],
    ['/profiles/batch', 'POST', `{"userIds":${'['.repeat(5000)}${']'.repeat(5000)}}`],
    ['/users/1', 'PATCH', `{"name":${'['.repeat(5000)}${']'.repeat(5000)}}`],
  ] as const) {
    const mark = t.logs.length;
    const a = await send(t, { method, path, headers: { 'content-type': 'application/json' }, body });
    console.log(
      path,
      a.status,
      a.body.toString().slice(0, 200),
      t.logs
        .slice(mark)
        .filter((l) => (l['level'] as number) >= 50)
        .map((l) => JSON.stringify(l).slice(0, 1500)),
    );
  }
  await t.close();
});
