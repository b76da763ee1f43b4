import { Logger } from '@nestjs/common';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTransport, type Transporter } from 'nodemailer';
import { MailTransport, type OutgoingMail } from './mail-transport.js';

/**
 * Development transport, used when SMTP_URL is unset: renders each message
 * with nodemailer's stream transport and writes it as an .eml file into the
 * outbox folder, with one log line, so `npm start` works with no mail server.
 */
export class FileMailTransport extends MailTransport {
  readonly kind = 'file';
  private readonly logger = new Logger('FileMailTransport');
  private readonly transporter: Transporter;
  private ready: Promise<unknown> | undefined;

  constructor(
    private readonly outboxDir: string,
    private readonly from: string,
  ) {
    super();
    this.transporter = createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  }

  async send(mail: OutgoingMail, signal?: AbortSignal): Promise<void> {
    this.ready ??= mkdir(this.outboxDir, { recursive: true });
    await this.ready;
    const info = (await this.transporter.sendMail({
      from: this.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      messageId: mail.messageId,
      signal,
    })) as { message: Buffer };
    signal?.throwIfAborted();
    const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${mail.messageId.replace(/^<|@.*$/g, '').replace(/[^A-Za-z0-9-]/g, '')}.eml`;
    const path = join(this.outboxDir, name);
    await writeFile(path, info.message);
    this.logger.log({ to: mail.to, subject: mail.subject, messageId: mail.messageId, path }, 'mail written to outbox');
  }

  close(): Promise<void> {
    this.transporter.close();
    return Promise.resolve();
  }
}
