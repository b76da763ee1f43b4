/** Deepest nesting a JSON body may have: no DTO needs more, and class-transformer recurses once per level. */
export const MAX_BODY_DEPTH = 32;

/**
 * Whether arrays and objects nest deeper than `limit` in a parsed JSON value.
 * Walks with an explicit stack (no recursion), so a 100,000-deep body is
 * answered rather than overflowing the call stack.
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue;
    if (next.depth >= limit) return true;
    const children: unknown[] = Array.isArray(next.value) ? next.value : Object.values(next.value);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: next.depth + 1 });
    }
  }
  return false;
}
