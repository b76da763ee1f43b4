/**
 * The one rule for text that reaches storage, a mail or another client.
 *
 * Refused everywhere: NUL (PostgreSQL cannot store it in `text`), unpaired
 * UTF-16 surrogates (they cannot be encoded as UTF-8, so they would be stored
 * as U+FFFD: silently changed), and the C0 control characters other than tab,
 * line feed and carriage return, plus DEL (invisible, they corrupt terminals,
 * logs and mail clients). Everything else in Unicode is accepted, including C1
 * controls and format characters such as the zero-width joiner that emoji
 * sequences need. Single-line fields also refuse tab and line breaks
 * (`@SingleLine()`).
 */

export type TextViolation = 'nul' | 'control' | 'surrogate';

// Control characters are exactly what this pattern is for.
const FORBIDDEN =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Which part of the rule `text` breaks, if any. */
export function textViolation(text: string): TextViolation | undefined {
  const found = FORBIDDEN.exec(text);
  if (found === null) return undefined;
  const code = found[0].charCodeAt(0);
  if (code === 0) return 'nul';
  return code >= 0xd800 && code <= 0xdfff ? 'surrogate' : 'control';
}

/** The message naming the field, as answered in problem documents and chat error frames. */
export function textViolationMessage(field: string, violation: TextViolation): string {
  switch (violation) {
    case 'nul':
      return `${field} must not contain NUL characters`;
    case 'surrogate':
      return `${field} must be well-formed Unicode (it holds an unpaired surrogate)`;
    case 'control':
      return `${field} must not contain control characters other than tab, line feed and carriage return`;
  }
}

/** Deepest nesting a body or query may have; deeper ones are refused before anything recurses over them. */
export const MAX_DEPTH = 32;

export interface TextProblem {
  readonly field: string;
  readonly message: string;
}

/**
 * Walks a parsed body or query (iteratively, so no input can overflow the
 * stack) and returns the first string that breaks the rule, named by its path
 * (`items.3.name`), or the first value nested deeper than {@link MAX_DEPTH}.
 */
export function findTextProblem(value: unknown, root: string): TextProblem | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: '', depth: 0 }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { value: current, path, depth } = next;
    if (typeof current === 'string') {
      const violation = textViolation(current);
      if (violation !== undefined) {
        const field = path === '' ? root : path;
        return { field, message: textViolationMessage(field, violation) };
      }
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= MAX_DEPTH) {
      return {
        field: path === '' ? root : path,
        message: `${root} is nested more than ${String(MAX_DEPTH)} levels deep`,
      };
    }
    const entries: [string | number, unknown][] = Array.isArray(current)
      ? [...current.entries()]
      : Object.entries(current as Record<string, unknown>);
    // Pushed last to first, so fields are reported in the order they were sent.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i] as [string | number, unknown];
      if (typeof child === 'string' || (typeof child === 'object' && child !== null)) {
        stack.push({ value: child, path: path === '' ? String(key) : `${path}.${String(key)}`, depth: depth + 1 });
      }
    }
  }
  return undefined;
}
