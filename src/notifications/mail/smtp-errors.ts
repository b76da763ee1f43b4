/** How a failed send is treated: retry later, or give up on this message now. */
export type SendFailureKind = 'transient' | 'permanent';

/** nodemailer error codes of a misaddressed or malformed message: resending cannot help. */
const PERMANENT_CODES: ReadonlySet<string> = new Set(['EENVELOPE', 'EMESSAGE']);

/** The SMTP reply code carried by a nodemailer error, if the server answered at all. */
export function smtpResponseCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { responseCode?: unknown }).responseCode;
  return typeof code === 'number' && Number.isInteger(code) ? code : undefined;
}

/**
 * SMTP failure classification (RFC 5321 §4.2.1): a 4yz reply is a transient
 * negative completion (greylisting, mailbox busy, server short of resources),
 * a 5yz reply a permanent one (no such user, policy refusal). Without a reply:
 * an envelope or message the transport itself refused is permanent; anything
 * else (connection refused or reset, timeouts, TLS trouble, an open circuit
 * breaker) is transient, bounded by the retry limit.
 */
export function classifySendError(error: unknown): SendFailureKind {
  const reply = smtpResponseCode(error);
  if (reply !== undefined) {
    if (reply >= 500 && reply < 600) return 'permanent';
    if (reply >= 400 && reply < 500) return 'transient';
  }
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && PERMANENT_CODES.has(code)) return 'permanent';
  return 'transient';
}

/** One line for `last_error` and logs: the SMTP reply when there is one, else the error message. */
export function describeSendError(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const e = error as { response?: unknown; message?: unknown; code?: unknown; name?: unknown };
    if (typeof e.response === 'string' && e.response !== '') return e.response;
    const message = typeof e.message === 'string' ? e.message : 'unknown error';
    return typeof e.code === 'string' ? `${e.code}: ${message}` : message;
  }
  return typeof error === 'string' ? error : 'unknown error';
}
