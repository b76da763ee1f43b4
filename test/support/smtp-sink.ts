import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/** One message the sink received (accepted or refused), parsed minimally from the raw text. */
export interface ReceivedMail {
  readonly recipients: string[];
  readonly subject: string;
  readonly messageId: string;
  readonly body: string;
  readonly accepted: boolean;
  readonly receivedAt: number;
}

/** One envelope held before DATA (see `envelopeDelayMs`). */
export interface EnvelopeHold {
  readonly startedAt: number;
  /** When the hold ended: answered, or the client closed the connection. */
  readonly endedAt: number | undefined;
  /** The client went away during the hold: it never sent the message. */
  readonly abandoned: boolean;
}

export interface SmtpSink {
  readonly port: number;
  readonly url: string;
  /** Every DATA the sink saw, in order, refused ones included. */
  readonly all: ReceivedMail[];
  /** Only the messages it accepted (250). */
  accepted(): ReceivedMail[];
  /**
   * Delay before answering RCPT TO, so a client may send DATA only that much later: a send
   * given up in the wait leaves no message at the server. Settable at any time (0: none).
   */
  envelopeDelayMs: number;
  /** Every envelope held by `envelopeDelayMs`, in order. */
  readonly holds: readonly EnvelopeHold[];
  close(): Promise<void>;
}

/**
 * A real SMTP server (smtp-server) on 127.0.0.1:0, no TLS, no auth. Tests steer
 * its answer through the subject:
 * - `[tempfail:N]` answers 451 to the first N attempts of one Message-ID, then accepts;
 * - `[tempfail:always]` always answers 451; `[reject]` always answers 550;
 * - `[slow:MS]` waits MS before answering.
 *
 * `delayMs` delays every answer to DATA (so deliveries take a while);
 * `envelopeDelayMs` delays the answer to RCPT TO, before any of the message is sent.
 */
export async function startSmtpSink(
  options: { readonly delayMs?: number; readonly envelopeDelayMs?: number } = {},
): Promise<SmtpSink> {
  const all: ReceivedMail[] = [];
  const refusals = new Map<string, number>();
  const holds: { startedAt: number; endedAt: number | undefined; abandoned: boolean }[] = [];
  /** Holds in progress, by session id. */
  const holding = new Map<string, { hold: (typeof holds)[number]; timer: NodeJS.Timeout }>();
  let envelopeDelayMs = options.envelopeDelayMs ?? 0;
  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    disableReverseLookup: true,
    onRcptTo(_address, session, callback) {
      if (envelopeDelayMs <= 0) {
        callback();
        return;
      }
      const hold = { startedAt: Date.now(), endedAt: undefined as number | undefined, abandoned: false };
      holds.push(hold);
      const timer = setTimeout(() => {
        holding.delete(session.id);
        hold.endedAt = Date.now();
        callback();
      }, envelopeDelayMs);
      holding.set(session.id, { hold, timer });
    },
    onClose(session) {
      const held = holding.get(session.id);
      if (held === undefined) return;
      holding.delete(session.id);
      clearTimeout(held.timer);
      held.hold.endedAt = Date.now();
      held.hold.abandoned = true;
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const parsed = parse(Buffer.concat(chunks).toString('utf8'));
        const recipients = session.envelope.rcptTo.map((a) => a.address);
        let error: Error | undefined;
        const temp = /\[tempfail:(\d+|always)\]/.exec(parsed.subject);
        if (/\[reject\]/.test(parsed.subject)) {
          error = Object.assign(new Error('5.1.1 Mailbox unavailable'), { responseCode: 550 });
        } else if (temp !== null) {
          const seen = refusals.get(parsed.messageId) ?? 0;
          if (temp[1] === 'always' || seen < Number(temp[1])) {
            refusals.set(parsed.messageId, seen + 1);
            error = Object.assign(new Error('4.3.0 Try again later'), { responseCode: 451 });
          }
        }
        const slow = /\[slow:(\d+)\]/.exec(parsed.subject);
        const delay = slow !== null ? Number(slow[1]) : (options.delayMs ?? 0);
        const answer = () => {
          all.push({ ...parsed, recipients, accepted: error === undefined, receivedAt: Date.now() });
          callback(error ?? null);
        };
        if (delay > 0) setTimeout(answer, delay);
        else answer();
      });
    },
  });
  server.on('error', () => {});
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const { port } = server.server.address() as AddressInfo;
  return {
    port,
    url: `smtp://127.0.0.1:${String(port)}`,
    all,
    accepted: () => all.filter((m) => m.accepted),
    get envelopeDelayMs() {
      return envelopeDelayMs;
    },
    set envelopeDelayMs(ms: number) {
      envelopeDelayMs = ms;
    },
    holds,
    close: () =>
      new Promise<void>((resolve) => {
        for (const { timer } of holding.values()) clearTimeout(timer);
        holding.clear();
        server.close(() => {
          resolve();
        });
      }),
  };
}

function parse(raw: string): { subject: string; messageId: string; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  let body = split < 0 ? '' : raw.slice(split + 4);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if ((headers.get('content-transfer-encoding') ?? '').toLowerCase() === 'quoted-printable') {
    body = body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  return {
    subject: headers.get('subject') ?? '',
    messageId: headers.get('message-id') ?? '',
    body: body.replace(/\r\n$/, ''),
  };
}
