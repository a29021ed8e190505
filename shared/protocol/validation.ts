import type { z } from 'zod';
import { SwitchboardError } from '../errors.ts';

/** Renders a zod error as "field.path: problem" (up to 3 problems), for INVALID_MESSAGE. */
export function describeIssues(error: z.ZodError, root = ''): string {
  const parts = error.issues.slice(0, 3).map((issue) => {
    const path = [root, ...issue.path.map(String)].filter(Boolean).join('.') || '(root)';
    return `${path}: ${issue.message}`;
  });
  const more = error.issues.length > 3 ? ` (+${error.issues.length - 3} more)` : '';
  return parts.join('; ') + more;
}

/** Parses `value` with `schema` or throws INVALID_MESSAGE naming the field(s). */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, root = ''): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new SwitchboardError('INVALID_MESSAGE', describeIssues(result.error, root));
  return result.data;
}
