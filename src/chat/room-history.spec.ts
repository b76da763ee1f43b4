import { describe, expect, it } from '@jest/globals';
import type { ChatMessage } from './chat.protocol.js';
import { RoomHistory } from './room-history.js';

const msg = (id: number): ChatMessage => ({
  id,
  room: 'r',
  author: 'a',
  guest: false,
  text: `m${String(id)}`,
  ts: '2026-12-02T00:00:00.000Z',
});
const ids = (list: readonly ChatMessage[] | undefined) => list?.map((m) => m.id);

describe('RoomHistory', () => {
  it('keeps the last `size` messages, oldest first, and drops the oldest as new ones come', () => {
    const h = new RoomHistory(3);
    h.fill([msg(1), msg(2)]);
    h.append(msg(3));
    h.append(msg(4));
    expect(ids(h.latest())).toEqual([2, 3, 4]);
  });

  it('merges what arrived while the first read was in flight, without duplicates', () => {
    const h = new RoomHistory(5);
    expect(h.isLoaded).toBe(false);
    h.append(msg(7));
    h.append(msg(5));
    h.fill([msg(3), msg(4), msg(5)]);
    expect(h.isLoaded).toBe(true);
    expect(ids(h.latest())).toEqual([3, 4, 5, 7]);
  });

  it('tells a duplicate and a message older than a full window apart from a new one', () => {
    const h = new RoomHistory(2);
    h.fill([msg(10), msg(11)]);
    expect(h.append(msg(11))).toBe('duplicate');
    expect(h.append(msg(9))).toBe('old');
    expect(h.append(msg(12))).toBe('added');
    expect(ids(h.latest())).toEqual([11, 12]);
  });

  it('puts a late message from another instance in id order', () => {
    const h = new RoomHistory(4);
    h.fill([msg(1), msg(3)]);
    h.append(msg(2));
    expect(ids(h.latest())).toEqual([1, 2, 3]);
  });

  it('answers a catch-up it covers and declines one that may reach past its oldest', () => {
    const h = new RoomHistory(3);
    h.fill([msg(4), msg(5), msg(6)]);
    expect(ids(h.after(4))).toEqual([5, 6]);
    expect(ids(h.after(6))).toEqual([]);
    // Messages between 2 and 4 may exist in storage only.
    expect(h.after(2)).toBeUndefined();
  });

  it('answers any catch-up while it holds every message of the room', () => {
    const h = new RoomHistory(5);
    h.fill([msg(4), msg(6)]);
    expect(ids(h.after(0))).toEqual([4, 6]);
    for (const id of [7, 8, 9, 10]) h.append(msg(id));
    // Full now, and 4 was dropped: a catch-up from 0 needs storage.
    expect(h.after(0)).toBeUndefined();
    expect(ids(h.after(6))).toEqual([7, 8, 9, 10]);
  });

  it('declines every catch-up before its first read', () => {
    expect(new RoomHistory(3).after(0)).toBeUndefined();
  });

  it('encodes the window once per change', () => {
    const h = new RoomHistory(3);
    h.fill([msg(1)]);
    const first = h.latestFrame('r');
    expect(JSON.parse(first.toString())).toEqual({ type: 'history', room: 'r', messages: [msg(1)] });
    expect(h.latestFrame('r')).toBe(first);
    h.append(msg(1));
    expect(h.latestFrame('r')).toBe(first);
    h.append(msg(2));
    expect(JSON.parse(h.latestFrame('r').toString())).toMatchObject({ messages: [msg(1), msg(2)] });
  });
});
