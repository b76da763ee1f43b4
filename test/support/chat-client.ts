import WebSocket from 'ws';
import { mintToken } from './tokens.js';

export type Frame = Record<string, unknown> & { type: string };
export interface Message {
  id: number;
  room: string;
  author: string;
  guest: boolean;
  text: string;
  ts: string;
}

/** Who the server took the connection for (its `welcome` frame). */
export interface Welcome {
  name: string;
  guest: boolean;
  canPost: boolean;
}

export interface ChatClientOptions extends WebSocket.ClientOptions {
  /** A bearer token for the upgrade; none: a guest. */
  readonly token?: string;
  /** Where the token goes: the Authorization header (the default, as programs do) or `?access_token=` (browsers). */
  readonly tokenIn?: 'header' | 'query';
}

/** A real `ws` client that records every frame and lets a test wait for the next one matching. */
export class ChatClient {
  /** Every frame received, in order (never consumed). */
  readonly log: Frame[] = [];
  private readonly unread: Frame[] = [];
  private waiters: { match: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Set once the welcome frame arrived (open waits for it). */
  me: Welcome = { name: '', guest: true, canPost: false };

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as Frame;
      this.log.push(frame);
      const waiter = this.waiters.find((w) => w.match(frame));
      if (waiter === undefined) {
        this.unread.push(frame);
      } else {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.resolve(frame);
      }
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /** Opens /ws (as a guest unless given a token) and waits for the welcome frame. */
  static async open(t: { readonly url: string }, options: ChatClientOptions = {}): Promise<ChatClient> {
    const { token, tokenIn = 'header', ...wsOptions } = options;
    const query = token !== undefined && tokenIn === 'query' ? `?access_token=${encodeURIComponent(token)}` : '';
    const headers =
      token !== undefined && tokenIn === 'header'
        ? { ...wsOptions.headers, authorization: `Bearer ${token}` }
        : wsOptions.headers;
    const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/ws${query}`, {
      ...wsOptions,
      ...(headers === undefined ? {} : { headers }),
    });
    const client = new ChatClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        resolve();
      });
      ws.once('error', reject);
    });
    ws.on('error', () => {
      // close codes are what the tests look at
    });
    const welcome = await client.nextOf('welcome');
    client.me = {
      name: String(welcome['name']),
      guest: welcome['guest'] === true,
      canPost: welcome['canPost'] === true,
    };
    return client;
  }

  /** Opens /ws as a verified caller named `name` (sub `user-<name>`) who may post. */
  static async as(t: { readonly url: string }, name: string, options: ChatClientOptions = {}): Promise<ChatClient> {
    const token = await mintToken({ sub: `user-${name}`, name, scope: 'chat:write' });
    return ChatClient.open(t, { token, ...options });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next unread frame matching, waiting up to `ms`. */
  async next(match: (f: Frame) => boolean, ms = 5000): Promise<Frame> {
    const index = this.unread.findIndex(match);
    if (index >= 0) return this.unread.splice(index, 1)[0] as Frame;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no matching frame within ${String(ms)} ms; got ${JSON.stringify(this.log.slice(-10))}`));
      }, ms);
      this.waiters.push({
        match,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  async nextOf(type: string, extra: (f: Frame) => boolean = () => true, ms?: number): Promise<Frame> {
    return this.next((f) => f.type === type && extra(f), ms);
  }

  /** Joins and waits for the history and its own presence; `name` is sent but the server ignores it. */
  async join(room: string, name?: string, since?: number): Promise<Message[]> {
    this.send({
      type: 'join',
      room,
      ...(name === undefined ? {} : { name }),
      ...(since === undefined ? {} : { since }),
    });
    const history = await this.nextOf('history', (f) => f['room'] === room);
    await this.nextOf('presence', (f) => f['room'] === room && f['name'] === this.me.name && f['event'] === 'joined');
    return history['messages'] as Message[];
  }

  async error(code: string): Promise<Frame> {
    return this.nextOf('error', (f) => f['code'] === code);
  }

  close(): void {
    this.ws.close();
  }
}
