/** One message to send; `messageId` is the same on every attempt of one notification. */
export interface OutgoingMail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly messageId: string;
}

/**
 * Port for sending mail (the abstract class is the DI token). `send` resolves
 * once the transport accepted the message and rejects otherwise; callers
 * classify the error with `classifySendError`. When `signal` aborts, the send
 * stops (its connection is closed) and rejects with the signal's reason; a
 * message whose end the server had already received may still be delivered.
 */
export abstract class MailTransport {
  /** A short name for logs and metrics (`smtp`, `file`). */
  abstract readonly kind: string;
  abstract send(mail: OutgoingMail, signal?: AbortSignal): Promise<void>;
  /** Releases sockets and timers. */
  abstract close(): Promise<void>;
}
