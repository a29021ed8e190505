/**
 * What the launcher says when a service does not start or exits: the one-line reason and the
 * service's last log lines (stdout and stderr, in the order they came).
 */

/** The last `size` lines a process wrote, stdout and stderr together. */
export class LogTail {
  private readonly kept: string[] = [];

  constructor(private readonly size = 20) {}

  push(line: string): void {
    if (line.trim() === '') return;
    this.kept.push(line);
    if (this.kept.length > this.size) this.kept.shift();
  }

  lines(): string[] {
    return [...this.kept];
  }
}

interface LogEntry {
  level?: unknown;
  msg?: unknown;
  err?: unknown;
}

function parse(line: string): LogEntry | null {
  if (!line.startsWith('{')) return null;
  try {
    const entry = JSON.parse(line) as unknown;
    return typeof entry === 'object' && entry !== null ? entry : null;
  } catch {
    return null;
  }
}

const oneLine = (text: string) =>
  text
    .replace(/:\s*\n\s*-\s*/g, ': ')
    .replace(/\n\s*-\s*/g, '; ')
    .replace(/\s*\n\s*/g, ' ')
    .trim();

function entryText(entry: LogEntry): string {
  const msg = typeof entry.msg === 'string' ? entry.msg : '';
  const err = entry.err;
  const errText =
    typeof err === 'string'
      ? err
      : typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string'
        ? (err as { message: string }).message
        : '';
  return oneLine(errText && !msg.includes(errText) ? `${msg}: ${errText}` : msg);
}

/**
 * The one-line reason in a service's last log lines: the last error or fatal entry (its
 * message, and its error's), else the last warning, else the head of a stack trace
 * (`Error: …`), else the last line.
 */
export function failureReason(lines: string[]): string {
  const entries = lines.map((line) => ({ line, entry: parse(line) }));
  for (const min of [50, 40]) {
    const found = entries.findLast(({ entry }) => typeof entry?.level === 'number' && entry.level >= min);
    if (found?.entry) return entryText(found.entry);
  }
  const plain = entries.filter(({ entry }) => entry === null).map(({ line }) => line.trim());
  const error = plain.findLast((line) => /^(\w*Error|Error)\b/.test(line));
  if (error) return error;
  const last = entries.at(-1);
  if (last?.entry) return entryText(last.entry);
  return last?.line.trim() ?? '(no output)';
}

/** `<name> <what>: <reason>` and the last lines, indented, for the terminal. */
export function formatStartFailure(name: string, what: string, lines: string[]): string {
  const shown = lines.map((line) => `    ${line.length > 500 ? `${line.slice(0, 500)}…` : line}`);
  const heading = shown.length === 1 ? 'last log line' : `last ${shown.length} log lines`;
  const tail = shown.length > 0 ? `\n  ${heading} of ${name}:\n${shown.join('\n')}` : '';
  return `${name} ${what}: ${failureReason(lines)}${tail}`;
}
