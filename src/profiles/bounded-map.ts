/**
 * A Map that keeps at most `max` entries, dropping the least recently used,
 * so the in-memory profile cache cannot grow without bound. Keyv accepts any
 * Map-like store.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override get(key: K): V | undefined {
    const value = super.get(key);
    if (value !== undefined) {
      // Re-insert: Map iteration order is insertion order, so this marks it recently used.
      super.delete(key);
      super.set(key, value);
    }
    return value;
  }

  override set(key: K, value: V): this {
    if (super.has(key)) super.delete(key);
    super.set(key, value);
    while (this.size > this.max) {
      const oldest = this.keys().next();
      if (oldest.done === true) break;
      super.delete(oldest.value);
    }
    return this;
  }
}
