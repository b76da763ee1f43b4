/**
 * The chat's wire protocol: every WebSocket frame is one flat JSON object with
 * a `type`. This file parses and validates client frames (pure, no I/O) and
 * types the frames the server sends.
 */

import { textViolation, textViolationMessage } from '../common/text/text-rule.js';

export const MAX_TEXT_LENGTH = 2000;
export const MAX_ROOM_LENGTH = 64;
export const MAX_NAME_LENGTH = 32;
/** Longest author name shown: a token's `name` (the verifier keeps 64 characters of it). */
export const MAX_AUTHOR_LENGTH = 64;
export const MAX_CLIENT_MSG_ID_LENGTH = 64;
/** Largest frame accepted; larger ones close the connection with 1009. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Messages sent with `history` on a plain join. */
export const HISTORY_SIZE = 50;
/** Most messages sent with `history` on a catch-up join (`since`). */
export const CATCH_UP_LIMIT = 500;
/** Rooms one connection may be in at once. */
export const MAX_ROOMS_PER_CONNECTION = 20;
/** Most members one `who` page lists (and its default). */
export const WHO_PAGE_MAX = 100;
/** Longest `who` cursor accepted (cursors are the server's own, opaque to clients). */
export const MAX_CURSOR_LENGTH = 200;
/** Room a `message` before any `join` goes to. */
export const LOBBY = 'lobby';

const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
// Letters, digits, space, and _ . - (no control or markup characters).
const NAME_PATTERN = /^[\p{L}\p{N}_. -]{1,32}$/u;
const CLIENT_MSG_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const CURSOR_PATTERN = /^[A-Za-z0-9_.:-]{1,200}$/;

export type ChatErrorCode =
  | 'invalid_json'
  | 'invalid_frame'
  | 'unknown_type'
  | 'invalid_room'
  | 'invalid_name'
  | 'invalid_text'
  | 'text_too_long'
  | 'invalid_since'
  | 'invalid_client_msg_id'
  | 'invalid_cursor'
  | 'invalid_limit'
  | 'not_joined'
  | 'too_many_rooms'
  | 'rate_limited'
  /** A post without a token where guests may not post. */
  | 'unauthorized'
  /** A post with a verified token that lacks `chat:write`. */
  | 'insufficient_scope'
  | 'unavailable'
  | 'internal_error';

export type ClientFrame =
  | {
      readonly type: 'join';
      readonly room: string;
      /** Validated for compatibility, then ignored: who a connection is comes from its token. */
      readonly name: string | undefined;
      readonly since: number | undefined;
    }
  | { readonly type: 'leave'; readonly room: string }
  | {
      readonly type: 'message';
      readonly room: string | undefined;
      readonly text: string;
      readonly clientMsgId: string | undefined;
    }
  /** A page of who is in a room (the sender must be a member). */
  | { readonly type: 'who'; readonly room: string; readonly cursor: string | undefined; readonly limit: number };

export interface ChatMessage {
  readonly id: number;
  readonly room: string;
  readonly author: string;
  /** True when the author had no token (a guest-xxxxxx name, this connection's only). */
  readonly guest: boolean;
  readonly text: string;
  /** ISO 8601 */
  readonly ts: string;
}

export type ServerFrame =
  | ({ readonly type: 'message' } & ChatMessage)
  | {
      readonly type: 'presence';
      readonly room: string;
      readonly event: 'joined' | 'left';
      readonly name: string;
      readonly guest: boolean;
      readonly count: number;
    }
  /** A large room's presence, at most once per CHAT_PRESENCE_INTERVAL_MS: joins and leaves since the last one. */
  | {
      readonly type: 'presence';
      readonly room: string;
      readonly event: 'summary';
      readonly count: number;
      readonly joined: number;
      readonly left: number;
    }
  /** One page of a room's members; `cursor` (absent on the last page) asks for the next. */
  | {
      readonly type: 'who';
      readonly room: string;
      readonly count: number;
      readonly members: readonly { readonly name: string; readonly guest: boolean }[];
      readonly cursor?: string;
    }
  | {
      readonly type: 'history';
      readonly room: string;
      readonly messages: readonly ChatMessage[];
      readonly truncated?: true;
    }
  /** First frame on every connection: who the server takes it for, and whether it may post. */
  | { readonly type: 'welcome'; readonly name: string; readonly guest: boolean; readonly canPost: boolean }
  | { readonly type: 'error'; readonly code: ChatErrorCode; readonly message: string }
  | { readonly type: 'ack'; readonly clientMsgId: string; readonly id: number };

export class FrameError extends Error {
  constructor(
    readonly code: ChatErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

export const messageFrame = (m: ChatMessage): ServerFrame => ({ type: 'message', ...m });

export const errorFrame = (code: ChatErrorCode, message: string): ServerFrame => ({ type: 'error', code, message });

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function room(value: unknown): string {
  if (typeof value !== 'string' || !ROOM_PATTERN.test(value)) {
    throw new FrameError(
      'invalid_room',
      `room must be 1..${String(MAX_ROOM_LENGTH)} characters of letters, digits, _ or -`,
    );
  }
  return value;
}

function name(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = typeof value === 'string' ? value.trim() : undefined;
  if (trimmed === undefined || !NAME_PATTERN.test(trimmed)) {
    throw new FrameError(
      'invalid_name',
      `name must be 1..${String(MAX_NAME_LENGTH)} characters of letters, digits, spaces, _ . or -`,
    );
  }
  return trimmed;
}

function since(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  // A string must be the canonical decimal form (no sign, exponent, hex or leading zero).
  const n = typeof value === 'string' && /^(?:0|[1-9]\d{0,14})$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new FrameError('invalid_since', 'since must be a message id: an integer >= 0');
  }
  return n;
}

function text(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new FrameError('invalid_text', 'text must be a non-empty string');
  }
  if (value.length > MAX_TEXT_LENGTH) {
    throw new FrameError('text_too_long', `text must be at most ${String(MAX_TEXT_LENGTH)} characters`);
  }
  const violation = textViolation(value);
  if (violation !== undefined) throw new FrameError('invalid_text', textViolationMessage('text', violation));
  return value;
}

function clientMsgId(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !CLIENT_MSG_ID_PATTERN.test(value)) {
    throw new FrameError(
      'invalid_client_msg_id',
      `clientMsgId must be 1..${String(MAX_CLIENT_MSG_ID_LENGTH)} characters of letters, digits, _ . : or -`,
    );
  }
  return value;
}

function cursor(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !CURSOR_PATTERN.test(value)) {
    throw new FrameError('invalid_cursor', 'cursor must be the cursor of a previous who answer');
  }
  return value;
}

function limit(value: unknown): number {
  if (value === undefined || value === null) return WHO_PAGE_MAX;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > WHO_PAGE_MAX) {
    throw new FrameError('invalid_limit', `limit must be an integer from 1 to ${String(WHO_PAGE_MAX)}`);
  }
  return value;
}

/** Parses one client frame; throws {@link FrameError} with the code to answer. */
export function parseClientFrame(raw: string): ClientFrame {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    throw new FrameError('invalid_json', 'frame is not valid JSON');
  }
  if (!isRecord(data) || typeof data['type'] !== 'string') {
    throw new FrameError('invalid_frame', 'frame must be a JSON object with a string "type"');
  }
  switch (data['type']) {
    case 'join':
      return { type: 'join', room: room(data['room']), name: name(data['name']), since: since(data['since']) };
    case 'leave':
      return { type: 'leave', room: room(data['room']) };
    case 'message':
      return {
        type: 'message',
        room: data['room'] === undefined ? undefined : room(data['room']),
        text: text(data['text']),
        clientMsgId: clientMsgId(data['clientMsgId']),
      };
    case 'who':
      return { type: 'who', room: room(data['room']), cursor: cursor(data['cursor']), limit: limit(data['limit']) };
    default:
      throw new FrameError('unknown_type', 'type must be join, leave, message or who');
  }
}
