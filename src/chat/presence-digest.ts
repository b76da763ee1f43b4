/** What a large room's members are told about presence once per interval. */
export interface PresenceSummary {
  readonly room: string;
  /** Members now, across instances (the latest count heard). */
  readonly count: number;
  /** Joins and leaves since the room's previous summary. */
  readonly joined: number;
  readonly left: number;
}

interface Pending {
  count: number;
  joined: number;
  left: number;
}

/**
 * Coalesces the presence changes of large rooms: each change is counted, and
 * {@link drain} returns one summary per room that changed since the last
 * drain. The caller drains on a timer, so a room of N members costs one frame
 * per member per interval however fast members come and go, not N per change.
 */
export class PresenceDigest {
  private readonly pending = new Map<string, Pending>();

  /** Rooms with changes not yet drained. */
  get size(): number {
    return this.pending.size;
  }

  record(room: string, event: 'joined' | 'left', count: number): void {
    let entry = this.pending.get(room);
    if (entry === undefined) {
      entry = { count, joined: 0, left: 0 };
      this.pending.set(room, entry);
    }
    entry.count = count;
    if (event === 'joined') entry.joined++;
    else entry.left++;
  }

  /** Removes and returns one room's pending summary (before a per-member frame must follow it). */
  take(room: string): PresenceSummary | undefined {
    const entry = this.pending.get(room);
    if (entry === undefined) return undefined;
    this.pending.delete(room);
    return { room, ...entry };
  }

  /** Removes and returns every pending summary. */
  drain(): PresenceSummary[] {
    const out: PresenceSummary[] = [];
    for (const [room, entry] of this.pending) out.push({ room, ...entry });
    this.pending.clear();
    return out;
  }
}
