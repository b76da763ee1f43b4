/**
 * Fuzz tier, chat: fast-check sends hostile frames of every type (join, leave,
 * message, unknown types, non-JSON, binary, oversized) over a real WebSocket
 * to /ws, and hostile handshakes over raw sockets.
 *
 * The property, for every exchange: no `internal_error` (nor `unavailable`,
 * with the database up) frame, every error frame a known code with a
 * message, the connection kept open unless the frame was too big (1009) or
 * not UTF-8 text (1007), no log line at level >= 50, no unhandled rejection,
 * and /health still answering after each property. After the hostile frames
 * a sentinel (a join of a room the connection is in) must be answered, so
 * each case waits for the server to finish with what it was sent.
 *
 * Runs: a bounded few dozen cases per property inside `npm test`.
 *   FUZZ_RUNS=2000   cases per property (longer runs; timeouts scale)
 *   FUZZ_SEED=123    start every property from this seed (a failure prints its seed)
 *   FUZZ_PATH=4:1:0  with FUZZ_SEED and -t '<property>', replay the shrunk counterexample only
 * e.g. FUZZ_RUNS=2000 NODE_OPTIONS=--experimental-vm-modules npx jest test/fuzz/chat
 */
import { afterAll, afterEach, beforeAll, describe, it } from '@jest/globals';
import fc from 'fast-check';
import { MAX_FRAME_BYTES } from '../../src/chat/chat.protocol.js';
import { ChatClient, type Frame } from '../support/chat-client.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import {
  hasNulOrLoneSurrogate,
  hostileJson,
  hostileNumberToken,
  hostileString,
  jsonHasNulOrLoneSurrogate,
  notJsonText,
  nulOrSurrogateIn,
  obj,
  preview,
  printable,
  PROTOTYPE_KEYS,
  raw,
  serialize,
  str,
  type Json,
} from './arbitraries.js';
import {
  agent,
  assertAlive,
  checkAnswer,
  fuzz,
  runs,
  sendRaw,
  timeoutFor,
  Violation,
  watchProcess,
} from './harness.js';

const BOUNDED = 40;
const SENTINEL_ROOM = 'fuzz-sentinel';
const ERROR_CODES = new Set([
  'invalid_json',
  'invalid_frame',
  'unknown_type',
  'invalid_room',
  'invalid_name',
  'invalid_text',
  'text_too_long',
  'invalid_since',
  'invalid_client_msg_id',
  'not_joined',
  'too_many_rooms',
  'rate_limited',
  // Refused posts: never sent here (a guest may post on the embedded default), but known codes.
  'unauthorized',
  'insufficient_scope',
]);
const SERVER_TYPES = new Set(['welcome', 'message', 'presence', 'history', 'error', 'ack']);

let t: TestApp;

beforeAll(async () => {
  watchProcess();
  t = await startTestApp({ CHAT_RATE_PER_SEC: '1000000', CHAT_RATE_BURST: '10000000' });
}, 60_000);

afterEach(async () => {
  await assertAlive(t);
});

afterAll(async () => {
  session?.client.ws.terminate();
  await t.close();
  await agent.close();
});

// ---------------------------------------------------------------- frames

/** One WebSocket frame to send. */
interface Outgoing {
  readonly kind: 'text' | 'binary' | 'text-bytes';
  readonly data: string | Buffer;
  /** The parsed JSON, when the frame is JSON text (for the NUL oracle). */
  readonly json?: Json;
}

const text = (json: Json): Outgoing => ({ kind: 'text', data: serialize(json), json });

const field = (value: fc.Arbitrary<Json>): fc.Arbitrary<Json | undefined> =>
  fc.option(value, { nil: undefined, freq: 4 });

const validRoom = fc.constantFrom('lobby', 'r1', 'a-b_C', 'x'.repeat(64), 'room9');
const room: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: validRoom.map(str) },
  { weight: 2, arbitrary: hostileString.map(str) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(65), 'a b', 'a/b', 'é', '').map(str) },
  { weight: 1, arbitrary: hostileJson },
);
const name: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('Ada', 'Ünïcødé', '  padded  ', 'x'.repeat(32), 'a.b-c_d', '李').map(str) },
  { weight: 2, arbitrary: hostileString.map(str) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(33), '<b>', 'a\tb', '').map(str) },
  { weight: 1, arbitrary: hostileJson },
);
const since: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: hostileNumberToken.map(raw) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('0', '1', '123', '0x10', '1e3', '-1', ' 1', '9'.repeat(15), '9'.repeat(16), '').map(str),
  },
  { weight: 1, arbitrary: fc.constantFrom('null', 'true', '[]', '{}').map(raw) },
  { weight: 1, arbitrary: hostileJson },
);
const messageText: fc.Arbitrary<Json> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .constantFrom('hello', 'x'.repeat(2_000), 'x'.repeat(2_001), '   ', '\n\t', '😀'.repeat(1_000))
      .map(str),
  },
  { weight: 3, arbitrary: hostileString.map(str) },
  { weight: 1, arbitrary: hostileJson },
);
const clientMsgId: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom('m-1', 'a.b:c_d-9', 'x'.repeat(64), 'x'.repeat(65), '', 'a b').map(str),
  hostileString.map(str),
  hostileJson,
);
const extraKeys: fc.Arbitrary<(readonly [string, Json])[]> = fc.array(
  fc.tuple(fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), hostileString), hostileJson),
  { maxLength: 2 },
);

const frameOf = (
  type: fc.Arbitrary<Json>,
  fields: Readonly<Record<string, fc.Arbitrary<Json | undefined>>>,
): fc.Arbitrary<Outgoing> =>
  fc
    .record({ type, values: fc.record(fields), extra: fc.option(extraKeys, { nil: undefined, freq: 3 }) })
    .map(({ type: ty, values, extra }) =>
      text(
        obj([
          ['type', ty],
          ...Object.entries(values).filter((e): e is [string, Json] => e[1] !== undefined),
          ...(extra ?? []),
        ]),
      ),
    );

const join = frameOf(fc.constant(str('join')), { room: field(room), name: field(name), since: field(since) });
const leave = frameOf(fc.constant(str('leave')), { room: field(room) });
const message = frameOf(fc.constant(str('message')), {
  room: field(room),
  text: field(messageText),
  clientMsgId: field(clientMsgId),
});
const unknownType = frameOf(
  fc.oneof(
    fc
      .constantFrom('JOIN', ' join', 'join ', 'Message', 'ping', 'history', 'ack', 'error', '', ...PROTOTYPE_KEYS)
      .map(str),
    hostileString.map(str),
    hostileJson,
  ),
  { room: field(room), text: field(messageText), name: field(name) },
);
const wrongShape: fc.Arbitrary<Outgoing> = fc.oneof(
  hostileJson.map(text),
  fc
    .constantFrom(
      '[{"type":"join","room":"lobby"}]',
      '"join"',
      'null',
      '1',
      '{"type":null}',
      '{"TYPE":"join"}',
      '{"type":["join"]}',
    )
    .map((s): Outgoing => ({ kind: 'text', data: s })),
);
const notJson: fc.Arbitrary<Outgoing> = fc.oneof(
  notJsonText.map((s): Outgoing => ({ kind: 'text', data: s })),
  fc.uint8Array({ maxLength: 64 }).map((b): Outgoing => ({ kind: 'binary', data: Buffer.from(b) })),
  fc.oneof(join, message).map((f): Outgoing => ({ kind: 'binary', data: Buffer.from(f.data) })),
  fc
    .constantFrom(
      Buffer.from([0xff, 0xfe]),
      Buffer.from([0xc0, 0x80]),
      Buffer.from('{"type":"join","room":"\xff"}', 'latin1'),
    )
    .map((b): Outgoing => ({ kind: 'text-bytes', data: b })),
  fc
    .constantFrom(MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES * 4)
    .map((n): Outgoing => ({ kind: 'text', data: `{"type":"message","text":"${'x'.repeat(Math.max(0, n - 30))}"}` })),
);

const describeFrames = (frames: readonly Outgoing[]): string =>
  frames
    .map((f) => `${f.kind}:${preview(typeof f.data === 'string' ? f.data : f.data.toString('latin1'), 200)}`)
    .join(' | ');

const asFrames = (arb: fc.Arbitrary<Outgoing[]>): fc.Arbitrary<Outgoing[]> =>
  arb.map((frames) => printable(frames, describeFrames));

const noNul = (frame: Outgoing): boolean => frame.json === undefined || !jsonHasNulOrLoneSurrogate(frame.json);

// ---------------------------------------------------------------- a connection that answers a sentinel

interface Session {
  readonly client: ChatClient;
  closed: { code: number; reason: string } | undefined;
}

let session: Session | undefined;

/** Each property starts on a fresh connection in the sentinel room and the lobby (earlier ones may have left it). */
async function freshSession(): Promise<void> {
  session?.client.ws.terminate();
  session = await openSession();
}

async function openSession(): Promise<Session> {
  const client = await ChatClient.open(t);
  const s: Session = { client, closed: undefined };
  void client.closed.then((c) => {
    s.closed = c;
  });
  await client.join(SENTINEL_ROOM, 'fuzzer');
  // A member of the lobby too, so messages sent there are stored and broadcast.
  await client.join('lobby', 'fuzzer');
  return s;
}

/** Sends the frames then the sentinel; returns what came back before the sentinel's answer (or the close). */
async function exchange(frames: readonly Outgoing[]): Promise<{ received: Frame[]; closed: Session['closed'] }> {
  if (session === undefined || session.closed !== undefined) session = await openSession();
  const s = session;
  const mark = s.client.log.length;
  for (const f of frames) {
    s.client.ws.send(f.data, { binary: f.kind === 'binary' });
  }
  s.client.send({ type: 'join', room: SENTINEL_ROOM });
  const answered = s.client.nextOf('history', (f) => f['room'] === SENTINEL_ROOM, 10_000).then(() => undefined);
  const closed = s.client.closed.then((c) => c);
  const outcome = await Promise.race([answered, closed]);
  const received = s.client.log.slice(mark);
  if (outcome !== undefined) return { received, closed: outcome };
  // Let a close that raced the sentinel land.
  await new Promise((resolve) => setImmediate(resolve));
  return { received, closed: s.closed };
}

/** The chat property over one exchange. */
function judge(
  category: string,
  frames: readonly Outgoing[],
  result: { received: Frame[]; closed: Session['closed'] },
): void {
  const sent = describeFrames(frames);
  for (const f of result.received) {
    if (!SERVER_TYPES.has(f.type)) throw new Violation(category, `unknown server frame ${preview(f)} after ${sent}`);
    if (f.type !== 'error') continue;
    if (f['code'] === 'internal_error' || f['code'] === 'unavailable') {
      throw new Violation(category, `the server answered ${preview(f)} to ${sent}`);
    }
    if (!ERROR_CODES.has(String(f['code'])) || typeof f['message'] !== 'string') {
      throw new Violation(category, `malformed error frame ${preview(f)} after ${sent}`);
    }
  }
  if (result.closed !== undefined) {
    const oversized = frames.some((f) => Buffer.byteLength(f.data) > MAX_FRAME_BYTES);
    const notUtf8 = frames.some((f) => f.kind === 'text-bytes');
    const expected = (oversized && result.closed.code === 1009) || (notUtf8 && result.closed.code === 1007);
    if (!expected) {
      throw new Violation(
        category,
        `the connection closed (${String(result.closed.code)} ${result.closed.reason}) after ${sent}`,
      );
    }
  }
}

async function run(name: string, category: string, frames: fc.Arbitrary<Outgoing[]>, bounded = BOUNDED): Promise<void> {
  await freshSession();
  await fuzz(
    t,
    name,
    asFrames(frames),
    async (fs) => {
      judge(category, fs, await exchange(fs));
    },
    { runs: runs(bounded) },
  );
}

const one = (arb: fc.Arbitrary<Outgoing>) => arb.filter(noNul).map((f) => [f]);

// ---------------------------------------------------------------- properties

describe('chat frames: every answer is a known frame, never internal_error', () => {
  it('join frames', async () => run('join frames', 'chat: join', one(join)), timeoutFor(BOUNDED));
  it('leave frames', async () => run('leave frames', 'chat: leave', one(leave)), timeoutFor(BOUNDED));
  it('message frames', async () => run('message frames', 'chat: message', one(message)), timeoutFor(BOUNDED));
  it(
    'unknown types and wrong shapes',
    async () =>
      run('unknown types and wrong shapes', 'chat: unknown type / shape', one(fc.oneof(unknownType, wrongShape))),
    timeoutFor(BOUNDED),
  );
  it(
    'not JSON, binary, not UTF-8 and oversized frames',
    async () =>
      run('not JSON, binary, not UTF-8 and oversized frames', 'chat: not JSON / binary / size', one(notJson), 30),
    timeoutFor(30),
  );
  it(
    'bursts of mixed frames on one connection',
    async () =>
      run(
        'bursts of mixed frames on one connection',
        'chat: bursts',
        fc.array(fc.oneof(join, leave, message, message, unknownType, wrongShape).filter(noNul), {
          minLength: 2,
          maxLength: 8,
        }),
        30,
      ),
    timeoutFor(30),
  );
});

describe('chat input categories', () => {
  it(
    'NUL and unpaired surrogates in text, room and name are refused with an error frame, never stored',
    async () => {
      const inField = (valid: Record<string, string>, fieldName: string) =>
        nulOrSurrogateIn(valid[fieldName] ?? '').map((value) =>
          text(obj(Object.entries(valid).map(([k, v]) => [k, str(k === fieldName ? value : v)] as const))),
        );
      const frames = fc.oneof(
        inField({ type: 'message', room: 'lobby', text: 'hello there', clientMsgId: 'nul-probe' }, 'text'),
        inField({ type: 'message', room: SENTINEL_ROOM, text: 'hello there' }, 'text'),
        inField({ type: 'join', room: 'lobby', name: 'Ada' }, 'name'),
        inField({ type: 'join', room: 'lobby' }, 'room'),
        inField({ type: 'message', room: 'lobby', text: 'hi', clientMsgId: 'nul-probe' }, 'clientMsgId'),
      );
      await freshSession();
      await fuzz(
        t,
        'NUL and unpaired surrogates in text, room and name are refused with an error frame, never stored',
        asFrames(frames.map((f) => [f])),
        async (fs) => {
          const category = 'chat strings: NUL / lone surrogate';
          const result = await exchange(fs);
          judge(category, fs, result);
          const stored = result.received.filter(
            (f) =>
              f.type === 'ack' ||
              (f.type === 'message' &&
                (hasNulOrLoneSurrogate(String(f['text'])) || String(f['text']).includes('\ufffd'))) ||
              (f.type === 'presence' &&
                f['event'] === 'joined' &&
                f['room'] !== SENTINEL_ROOM &&
                hasNulOrLoneSurrogate(String(f['name']))),
          );
          if (stored.length > 0 || !result.received.some((f) => f.type === 'error')) {
            throw new Violation(
              category,
              `a frame with NUL or a lone surrogate must get an error frame and be neither stored nor echoed; sent ${describeFrames(fs)}, got ${preview(result.received, 600)}`,
            );
          }
        },
        { runs: runs(30) },
      );
    },
    timeoutFor(30),
  );

  it(
    'handshakes at /ws: every refusal is answered, as a problem document',
    async () => {
      const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
      const header = (nameValue: string, values: readonly (string | undefined)[]) =>
        fc.constantFrom(...values).map((v) => (v === undefined ? '' : `${nameValue}: ${v}\r\n`));
      const cases = fc
        .record({
          method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'HEAD'),
          path: fc.constantFrom(
            '/ws',
            '/ws',
            '/ws?room=lobby',
            '/ws/',
            '/WS',
            '/ws%00',
            '/users',
            '/',
            '/ws?access_token=not.a.jwt',
            '/ws?access_token=',
            '/ws?access_token=a&access_token=b',
            '/ws?access_token=%zz',
          ),
          // No Host at all is Node's own plain 400 for any HTTP/1.1 request (the malformed-HTTP property's).
          host: header('Host', ['127.0.0.1', '127.0.0.1', '', '[', 'a b', '%zz']),
          upgrade: header('Upgrade', ['websocket', 'websocket', 'WebSocket', 'h2c', '', undefined]),
          connection: header('Connection', ['Upgrade', 'Upgrade', 'keep-alive, Upgrade', 'close', undefined]),
          version: header('Sec-WebSocket-Version', ['13', '13', '8', '99', '', 'abc', undefined]),
          key: header('Sec-WebSocket-Key', [KEY, KEY, 'short', '', 'a'.repeat(100), undefined]),
          authorization: header('Authorization', [
            undefined,
            undefined,
            undefined,
            'Bearer not.a.jwt',
            'Bearer',
            'Basic dXNlcjpwYXNz',
            `Bearer ${'x'.repeat(9000)}`,
          ]),
          protocol: header('Sec-WebSocket-Protocol', [undefined, undefined, 'chat', 'a,,b', ' ', 'a b']),
          extensions: header('Sec-WebSocket-Extensions', [
            undefined,
            undefined,
            'permessage-deflate',
            'x;;;=',
            'permessage-deflate; server_max_window_bits=99',
          ]),
        })
        .map((r) => {
          const textHead = `${r.method} ${r.path} HTTP/1.1\r\n${r.host}${r.upgrade}${r.connection}${r.version}${r.key}${r.authorization}${r.protocol}${r.extensions}\r\n`;
          return printable({ text: textHead, method: r.method }, (v) => JSON.stringify(v.text));
        });
      await fuzz(
        t,
        'handshakes at /ws: every refusal is answered, as a problem document',
        cases,
        async (c) => {
          const category = 'chat: handshake';
          const { answer, timedOut } = await sendRaw(t, Buffer.from(c.text, 'latin1'), 2_000);
          if (answer === undefined) {
            throw new Violation(
              category,
              `no HTTP answer (${timedOut ? 'timed out' : 'connection closed'}) to ${JSON.stringify(c.text)}`,
            );
          }
          if (answer.status === 101) return;
          checkAnswer(category, { method: c.method, path: c.text.split(' ')[1] ?? '' }, answer);
        },
        { runs: runs(BOUNDED) },
      );
    },
    timeoutFor(BOUNDED),
  );
});
