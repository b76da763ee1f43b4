import type { ChatMessage } from './chat.protocol.js';

/**
 * The last `size` messages of one room, oldest first, kept in memory so a
 * join does not read the database. Filled once from storage ({@link fill});
 * messages that arrive while that read is in flight are merged in, so none
 * falls between the read and the live stream. Ids are the store's sequence:
 * a message older than the window's oldest is not taken (the window is then
 * still the room's latest messages), a duplicate is ignored.
 */
export class RoomHistory {
  private messages: ChatMessage[] = [];
  /** Whether the window holds every message the room has (storage returned fewer than `size`). */
  private complete = false;
  private loaded = false;
  /** The window's `history` frame, serialised once per change (every plain join sends it). */
  private encoded: Buffer | undefined;

  constructor(private readonly size: number) {}

  get isLoaded(): boolean {
    return this.loaded;
  }

  /** Takes storage's latest messages (oldest first), merged with what arrived meanwhile. */
  fill(stored: readonly ChatMessage[]): void {
    const arrived = this.messages;
    this.complete = stored.length < this.size;
    this.messages = [...stored];
    this.loaded = true;
    for (const m of arrived) this.insert(m);
    this.encoded = undefined;
  }

  /**
   * A message stored here or on another instance: `duplicate` when the window
   * holds it already, `old` when it is older than a full window's oldest (not
   * kept, but it may still be news to the room's members).
   */
  append(message: ChatMessage): 'added' | 'duplicate' | 'old' {
    const outcome = this.insert(message);
    if (outcome === 'added') this.encoded = undefined;
    return outcome;
  }

  /** The window, oldest first. */
  latest(): readonly ChatMessage[] {
    return this.messages;
  }

  /** The `history` frame of a plain join to `room` (this window's room), encoded once until the window changes. */
  latestFrame(room: string): Buffer {
    this.encoded ??= Buffer.from(JSON.stringify({ type: 'history', room, messages: this.messages }));
    return this.encoded;
  }

  /**
   * Messages with id > `since`, or undefined when the window cannot tell (some
   * may be older than its oldest): the caller reads storage then.
   */
  after(since: number): readonly ChatMessage[] | undefined {
    const oldest = this.messages[0];
    if (!this.loaded || (!this.complete && (oldest === undefined || since < oldest.id))) return undefined;
    return this.messages.slice(this.positionAfter(since));
  }

  /** Index of the first message with an id above `id` (scanning from the newest: arrivals are mostly newest). */
  private positionAfter(id: number): number {
    let i = this.messages.length;
    while (i > 0 && (this.messages[i - 1]?.id ?? 0) > id) i--;
    return i;
  }

  private insert(message: ChatMessage): 'added' | 'duplicate' | 'old' {
    const list = this.messages;
    const i = this.positionAfter(message.id);
    if (list[i - 1]?.id === message.id) return 'duplicate';
    // Older than a full window's oldest: not among the latest.
    if (i === 0 && list.length >= this.size) return 'old';
    list.splice(i, 0, message);
    if (list.length > this.size) {
      list.shift();
      this.complete = false;
    }
    return 'added';
  }
}
