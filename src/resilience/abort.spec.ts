import { getEventListeners } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import { deriveSignal, onAbort } from './abort.js';
import { NEVER_ABORTED } from './policy.js';

const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

describe('onAbort', () => {
  it('calls every subscriber once, in order, through a single listener on the signal', () => {
    const controller = new AbortController();
    const calls: string[] = [];
    onAbort(controller.signal, () => calls.push('a'));
    onAbort(controller.signal, () => calls.push('b'));
    onAbort(controller.signal, () => calls.push('c'));
    expect(abortListeners(controller.signal)).toBe(1);

    controller.abort();

    expect(calls).toEqual(['a', 'b', 'c']);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it('removes the signal listener when the last subscriber disposes, and not before', () => {
    const controller = new AbortController();
    const first = onAbort(controller.signal, () => undefined);
    const second = onAbort(controller.signal, () => undefined);

    first.dispose();
    first.dispose(); // idempotent: must not drop the second one's listener
    expect(abortListeners(controller.signal)).toBe(1);
    second.dispose();
    expect(abortListeners(controller.signal)).toBe(0);

    const calls: string[] = [];
    onAbort(controller.signal, () => calls.push('again'));
    expect(abortListeners(controller.signal)).toBe(1);
    controller.abort();
    expect(calls).toEqual(['again']);
  });

  it('skips a subscriber disposed by an earlier one during the dispatch', () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const disposeSecond = { dispose: (): void => undefined };
    onAbort(controller.signal, () => {
      calls.push('first');
      disposeSecond.dispose();
    });
    const second = onAbort(controller.signal, () => calls.push('second'));
    disposeSecond.dispose = () => {
      second.dispose();
    };

    controller.abort();

    expect(calls).toEqual(['first']);
  });

  it('runs the other subscribers when one throws, then rethrows the error from the signal listener', () => {
    // A stand-in signal: rethrowing from a real one is reported as uncaught and would end the test process.
    let listener: (() => void) | undefined;
    const signal = {
      aborted: false,
      addEventListener: (_type: string, callback: () => void) => {
        listener = callback;
      },
      removeEventListener: () => undefined,
    } as unknown as AbortSignal;
    const bad = new Error('bad subscriber');
    const calls: string[] = [];
    onAbort(signal, () => {
      throw bad;
    });
    onAbort(signal, () => calls.push('after'));

    expect(() => {
      listener!();
    }).toThrow(bad);
    expect(calls).toEqual(['after']);
  });

  it('does nothing for an already-aborted signal', () => {
    const controller = new AbortController();
    controller.abort();
    const calls: string[] = [];

    const subscription = onAbort(controller.signal, () => calls.push('late'));

    expect(abortListeners(controller.signal)).toBe(0);
    subscription.dispose();
    expect(calls).toEqual([]);
  });
});

describe('deriveSignal', () => {
  it('aborts the child with the parent reason, unchanged', () => {
    const parent = new AbortController();
    const { signal, controller } = deriveSignal(parent.signal);
    expect(signal).toBe(controller.signal);
    expect(signal.aborted).toBe(false);

    const reason = new Error('caller gave up');
    parent.abort(reason);

    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });

  it('yields an already-aborted child for an already-aborted parent, adding no listener', () => {
    const parent = new AbortController();
    const reason = new Error('too late');
    parent.abort(reason);

    const { signal, dispose } = deriveSignal(parent.signal);

    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(abortListeners(parent.signal)).toBe(0);
    dispose();
  });

  it('never aborts the parent when the child aborts', () => {
    const parent = new AbortController();
    const { controller, dispose } = deriveSignal(parent.signal);

    controller.abort(new Error('child only'));

    expect(parent.signal.aborted).toBe(false);
    dispose();
  });

  it('keeps one listener on the parent however many children, and none once all dispose', () => {
    const parent = new AbortController();
    const derived = Array.from({ length: 50 }, () => deriveSignal(parent.signal));
    expect(abortListeners(parent.signal)).toBe(1);

    for (const { dispose } of derived) dispose();

    expect(abortListeners(parent.signal)).toBe(0);
    parent.abort(new Error('after dispose'));
    expect(derived.some(({ signal }) => signal.aborted)).toBe(false);
  });

  it('aborts only the children still linked', () => {
    const parent = new AbortController();
    const kept = deriveSignal(parent.signal);
    const unlinked = deriveSignal(parent.signal);

    unlinked.dispose();
    parent.abort();

    expect(kept.signal.aborted).toBe(true);
    expect(kept.signal.reason).toBe(parent.signal.reason);
    expect(unlinked.signal.aborted).toBe(false);
  });

  it('links to the never-aborted signal by default and leaves no listener on it', () => {
    const before = abortListeners(NEVER_ABORTED);
    const { signal, dispose } = deriveSignal();
    expect(signal.aborted).toBe(false);
    expect(abortListeners(NEVER_ABORTED)).toBe(before === 0 ? 1 : before);

    dispose();

    expect(abortListeners(NEVER_ABORTED)).toBe(before);
  });
});
