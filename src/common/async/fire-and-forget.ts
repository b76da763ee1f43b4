/** Anything that can log an error line: a pino logger, or a Nest Logger adapter. */
export interface ErrorSink {
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * The one sanctioned way to start work without awaiting it: a rejection is
 * logged, never left unhandled.
 */
export function fireAndForget(promise: Promise<unknown>, logger: ErrorSink, what: string): void {
  promise.catch((err: unknown) => {
    logger.error({ err }, `background task failed: ${what}`);
  });
}
