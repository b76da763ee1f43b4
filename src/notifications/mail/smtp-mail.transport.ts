import { createTransport, type Transporter } from 'nodemailer';
import type { AppConfig } from '../../config/app-config.js';
import type { ResiliencePipeline } from '../../resilience/pipeline.js';
import { MailTransport, type OutgoingMail } from './mail-transport.js';
import { smtpResponseCode } from './smtp-errors.js';

type SendOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

/**
 * Sends through an SMTP relay (nodemailer) over a pool of up to
 * NOTIFY_CONCURRENCY kept-open connections (a new connection costs the
 * greeting round trips, ~100 ms even on loopback; a pooled message ~10 ms). Each
 * send runs once through the `smtp` pipeline (bulkhead, breaker, attempt
 * timeout; never an in-process retry: the outbox retries with backoff). The
 * pipeline's signal (the caller's, or the attempt timeout's) goes to nodemailer,
 * whose pool then drops the message from its queue or closes the one
 * connection carrying it; the others keep their messages.
 *
 * An SMTP reply (4xx/5xx) is the server answering correctly, so it resolves
 * inside the pipeline and is rethrown outside: only connection failures and
 * timeouts count against the breaker.
 */
export class SmtpMailTransport extends MailTransport {
  readonly kind = 'smtp';
  private readonly transporter: Transporter;

  constructor(
    private readonly config: AppConfig['smtp'] & { readonly url: string },
    private readonly pipeline: ResiliencePipeline,
    maxConnections: number,
  ) {
    super();
    const timeoutMs = pipeline.settings.timeoutMs;
    this.transporter = createTransport({
      url: config.url,
      pool: true,
      maxConnections,
      tls: { rejectUnauthorized: config.tlsRejectUnauthorized },
      requireTLS: config.requireTls,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
  }

  async send(mail: OutgoingMail, signal?: AbortSignal): Promise<void> {
    const outcome = await this.pipeline.executeOnce<SendOutcome>(
      ({ signal: attempt }) =>
        this.transporter
          .sendMail({
            from: this.config.from,
            to: mail.to,
            subject: mail.subject,
            text: mail.text,
            messageId: mail.messageId,
            signal: attempt,
          })
          .then(
            (): SendOutcome => ({ ok: true }),
            (error: unknown): SendOutcome => {
              if (smtpResponseCode(error) !== undefined) return { ok: false, error };
              throw error;
            },
          ),
      signal,
    );
    if (!outcome.ok) throw outcome.error;
  }

  close(): Promise<void> {
    this.transporter.close();
    return Promise.resolve();
  }
}
