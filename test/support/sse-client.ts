import { EventSource } from 'eventsource';

export interface Received {
  readonly type: string;
  readonly id: string;
  readonly data: any;
}

/** An EventSource client that records every message, with an optional Last-Event-ID to resume from (and headers, e.g. a bearer token). */
export function subscribe(
  url: string,
  eventTypes: string[],
  lastEventId?: string,
  headers: Readonly<Record<string, string>> = {},
) {
  const received: Received[] = [];
  const source = new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: {
          ...init.headers,
          ...headers,
          ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
        },
      }),
  });
  const opened = new Promise<void>((resolve, reject) => {
    source.onopen = () => resolve();
    source.onerror = (e) => reject(new Error(`EventSource error: ${String(e.message)}`));
  });
  for (const type of eventTypes) {
    source.addEventListener(type, (e) => {
      received.push({ type, id: e.lastEventId, data: JSON.parse(e.data) });
    });
  }
  source.onmessage = (e) => {
    received.push({ type: 'message', id: e.lastEventId, data: JSON.parse(e.data) });
  };
  return { source, received, opened };
}
