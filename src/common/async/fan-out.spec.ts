import { describe, expect, it, jest } from '@jest/globals';
import { FanOut } from './fan-out.js';

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const immediate = () => new Promise((resolve) => setImmediate(resolve));

describe('FanOut', () => {
  it('runs a small fan-out in the tick of its caller', () => {
    const seen: number[] = [];
    new FanOut({ error: () => undefined }).run(range(10), (n) => seen.push(n));
    expect(seen).toEqual(range(10));
  });

  it('yields to the event loop between slices of a large fan-out, and keeps fan-outs in order', async () => {
    let clock = 0;
    // Every look at the clock is 1 ms later: a 4 ms slice holds four looks, 256 sends.
    const fan = new FanOut({ error: () => undefined }, 4, 16, () => clock++);
    const seen: string[] = [];
    fan.run(range(1000), (n) => seen.push(`a${String(n)}`));
    // Queued behind the first although small: order holds for every target.
    fan.run(range(3), (n) => seen.push(`b${String(n)}`));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(1000);
    let slices = 1;
    while (fan.pending > 0) {
      await immediate();
      slices++;
    }
    expect(slices).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual([...range(1000).map((n) => `a${String(n)}`), 'b0', 'b1', 'b2']);
  });

  it('logs a failed delivery and carries on with the rest', () => {
    const error = jest.fn();
    const seen: number[] = [];
    new FanOut({ error }).run(range(5), (n) => {
      if (n === 2) throw new Error('boom');
      seen.push(n);
    });
    expect(seen).toEqual([0, 1, 3, 4]);
    expect(error).toHaveBeenCalledTimes(1);
  });

  it('lets other work run while a large fan-out is under way', async () => {
    const fan = new FanOut({ error: () => undefined }, 1, 16);
    let other = false;
    let seenBeforeOther = -1;
    const targets = range(50_000);
    let count = 0;
    setImmediate(() => {
      other = true;
      seenBeforeOther = count;
    });
    fan.run(targets, () => {
      count++;
      // A little work per target, as a socket write is.
      for (let i = 0; i < 50; i++) Math.sqrt(i);
    });
    while (fan.pending > 0) await immediate();
    expect(other).toBe(true);
    expect(seenBeforeOther).toBeLessThan(targets.length);
    expect(count).toBe(targets.length);
  });
});
