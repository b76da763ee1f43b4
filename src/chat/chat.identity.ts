import { randomBytes } from 'node:crypto';
import { hasScope, type Caller } from '../auth/caller.js';
import { MAX_AUTHOR_LENGTH, type ChatErrorCode } from './chat.protocol.js';

/** Who a chat connection is, fixed at the upgrade: from its verified token, or a guest. */
export interface ChatIdentity {
  /** Shown as `author` and in presence: the token's `name`, or `guest-xxxxxx`. */
  readonly name: string;
  /** Whose messages these are for deduplication: the token's `sub`, or the guest name. */
  readonly key: string;
  readonly guest: boolean;
  /** Why a post is refused; undefined when the connection may post. */
  readonly refusal: { readonly code: ChatErrorCode; readonly message: string } | undefined;
  /** When the token stops being valid (epoch ms); undefined for guests and the operator's static token. */
  readonly expiresAt: number | undefined;
}

/** The longest `sub` stored (the verifier refuses longer ones). */
export const MAX_AUTHOR_KEY_LENGTH = 255;

// Controls and unpaired surrogates (a 64-character cut can split a pair): neither shown nor stored.
const UNSHOWABLE = /[\p{Cc}\p{Cs}]/gu;

/** A fresh guest name, one per connection: 6 random hex characters. */
export const guestName = (): string => `guest-${randomBytes(3).toString('hex')}`;

/**
 * The identity of a connection. A verified caller is their token (any
 * `name` a join frame carries is ignored); without `chat:write` they read
 * only. A connection without a token is a guest, posting only where
 * CHAT_GUESTS allows it.
 */
export function chatIdentity(caller: Caller | undefined, guestsMayPost: boolean, guest = guestName()): ChatIdentity {
  if (caller === undefined) {
    return {
      name: guest,
      key: guest,
      guest: true,
      refusal: guestsMayPost
        ? undefined
        : { code: 'unauthorized', message: 'posting needs a bearer token here (guests may join and read)' },
      expiresAt: undefined,
    };
  }
  const key = caller.sub.replace(UNSHOWABLE, '\ufffd').slice(0, MAX_AUTHOR_KEY_LENGTH);
  const shown = (s: string) => s.replace(UNSHOWABLE, '').trim().slice(0, MAX_AUTHOR_LENGTH);
  return {
    name: shown(caller.name) || shown(caller.sub) || 'user',
    key,
    guest: false,
    refusal: hasScope(caller, 'chat:write')
      ? undefined
      : { code: 'insufficient_scope', message: 'posting needs a token with the scope "chat:write"' },
    expiresAt: caller.expiresAt,
  };
}
