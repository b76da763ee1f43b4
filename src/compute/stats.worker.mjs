// Statistics for POST /process-data, run on the piscina worker pool: the raw
// request bytes arrive here (transferred, not copied), so JSON parsing,
// validation and the computation all stay off the API's event loop.
// Plain JavaScript: workers are not transpiled by the test runner, and this
// file is copied into dist as is. stats.worker.d.mts types it for TypeScript.
import { TextDecoder } from 'node:util';

export const MAX_VALUES = 1_000_000;
export const HISTOGRAM_BUCKETS = 20;
const MAX_REPORTED_ITEMS = 10;

/** Nearest rank: the smallest value with at least p% of the values at or below it (rank = ceil(p/100 * n)). */
function nearestRank(sorted, p) {
  const rank = Math.max(1, Math.ceil((p * sorted.length) / 100));
  return sorted[rank - 1];
}

/**
 * Count, sum, mean, population standard deviation, min, max, nearest-rank
 * p50/p95/p99 and an equal-width histogram over [min, max] of a non-empty
 * array of finite numbers. Pure; the caller validates.
 */
export function computeStats(values) {
  const n = values.length;
  const sorted = Float64Array.from(values).sort();
  const min = sorted[0];
  const max = sorted[n - 1];

  // Neumaier's compensated sum: accurate for a million values of mixed sign.
  let sum = 0;
  let compensation = 0;
  for (let i = 0; i < n; i++) {
    const v = sorted[i];
    const t = sum + v;
    compensation += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  }
  sum += compensation;
  const mean = sum / n;
  // Two-pass variance: no cancellation from subtracting large squares.
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const d = sorted[i] - mean;
    squares += d * d;
  }
  const stdDev = Math.sqrt(squares / n);

  return {
    count: n,
    sum,
    mean,
    stdDev,
    min,
    max,
    percentiles: { p50: nearestRank(sorted, 50), p95: nearestRank(sorted, 95), p99: nearestRank(sorted, 99) },
    histogram: { buckets: histogram(sorted, min, max) },
  };
}

/**
 * Equal-width buckets over [min, max]: bucket i is [from, to), the last one
 * [from, max]. When every value is equal there is one bucket [min, max]
 * holding them all. Halves and interpolation keep the arithmetic finite even
 * for values near ±Number.MAX_VALUE.
 */
function histogram(sorted, min, max) {
  const n = sorted.length;
  if (min === max) return [{ from: min, to: max, count: n }];
  const k = HISTOGRAM_BUCKETS;
  const span = max - min;
  const inner = Number.isFinite(span) ? (i) => min + (span * i) / k : (i) => min * (1 - i / k) + max * (i / k); // interpolate when max - min overflows
  const edge = (i) => (i === 0 ? min : i === k ? max : inner(i));
  const buckets = Array.from({ length: k }, (_, i) => ({ from: edge(i), to: edge(i + 1), count: 0 }));
  const halfSpan = max / 2 - min / 2;
  for (let i = 0; i < n; i++) {
    const v = sorted[i];
    let b = Math.floor(((v / 2 - min / 2) / halfSpan) * k);
    if (!(b >= 0)) b = 0; // NaN when the span underflows (subnormal values)
    if (b >= k) b = k - 1;
    // Keep each value inside its bucket's printed edges despite rounding.
    while (b > 0 && v < buckets[b].from) b--;
    while (b < k - 1 && v >= buckets[b + 1].from) b++;
    buckets[b].count++;
  }
  return buckets;
}

const fail = (reason, errors) => ({ ok: false, reason, errors });

/** Checks a parsed body: an object with exactly `values`, 1..MAX_VALUES finite numbers. */
export function validateBody(body) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return fail('validation_failed', [{ field: 'body', message: 'body must be a JSON object' }]);
  }
  const errors = Object.keys(body)
    .filter((key) => key !== 'values')
    .map((key) => ({ field: key, message: `${key} is not an allowed field` }));
  const values = body.values;
  if (!Object.hasOwn(body, 'values')) {
    errors.push({ field: 'values', message: 'values is required' });
  } else if (!Array.isArray(values)) {
    errors.push({ field: 'values', message: 'values must be an array of numbers' });
  } else if (values.length === 0) {
    errors.push({ field: 'values', message: 'values must contain at least 1 number' });
  } else if (values.length > MAX_VALUES) {
    errors.push({ field: 'values', message: `values must contain at most ${MAX_VALUES} numbers` });
  } else {
    let bad = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (typeof v === 'number' && Number.isFinite(v)) continue;
      if (bad++ < MAX_REPORTED_ITEMS) {
        errors.push({ field: `values.${i}`, message: `values.${i} must be a finite number` });
      }
    }
    if (bad > MAX_REPORTED_ITEMS) {
      errors.push({
        field: 'values',
        message: `${bad} items are not finite numbers (first ${MAX_REPORTED_ITEMS} listed)`,
      });
    }
  }
  return errors.length > 0 ? fail('validation_failed', errors) : { ok: true, values };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Decodes, parses, validates and computes; every outcome is a tagged result, never a throw. */
export function processBytes(bytes) {
  let body;
  try {
    body = JSON.parse(decoder.decode(bytes));
  } catch {
    return fail('invalid_json', [{ field: 'body', message: 'body must be valid UTF-8 JSON' }]);
  }
  const checked = validateBody(body);
  if (!checked.ok) return checked;
  const stats = computeStats(checked.values);
  if (!Number.isFinite(stats.sum) || !Number.isFinite(stats.stdDev)) {
    return fail('validation_failed', [
      { field: 'values', message: 'values are too large in magnitude: the sum or the deviation overflows' },
    ]);
  }
  return { ok: true, stats };
}

/** The piscina task: `{ buffer }`, an ArrayBuffer holding the request body (transferred to this thread). */
export default function run({ buffer }) {
  return processBytes(new Uint8Array(buffer));
}
