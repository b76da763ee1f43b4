import { describe, expect, it } from '@jest/globals';
import { PresenceDigest } from './presence-digest.js';

describe('PresenceDigest', () => {
  it('sums joins and leaves per room since the last drain, with the latest count', () => {
    const d = new PresenceDigest();
    d.record('a', 'joined', 101);
    d.record('a', 'joined', 102);
    d.record('b', 'left', 500);
    d.record('a', 'left', 101);
    expect(d.size).toBe(2);
    expect(d.drain()).toEqual([
      { room: 'a', count: 101, joined: 2, left: 1 },
      { room: 'b', count: 500, joined: 0, left: 1 },
    ]);
    expect(d.drain()).toEqual([]);
    expect(d.size).toBe(0);
  });

  it('hands over one room before a per-member frame, leaving the others pending', () => {
    const d = new PresenceDigest();
    d.record('a', 'left', 150);
    d.record('b', 'joined', 200);
    expect(d.take('a')).toEqual({ room: 'a', count: 150, joined: 0, left: 1 });
    expect(d.take('a')).toBeUndefined();
    expect(d.drain()).toEqual([{ room: 'b', count: 200, joined: 1, left: 0 }]);
  });
});
