import { pino, type Logger } from 'pino';

/** A real pino logger whose lines (parsed) are kept for assertions. */
export function captureLogger(level = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level },
    {
      write(text: string) {
        for (const line of text.split('\n').filter(Boolean))
          lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { log, lines };
}

/** Lines at error level or above (pino: 50 error, 60 fatal). */
export function errorLines(lines: Record<string, unknown>[]): Record<string, unknown>[] {
  return lines.filter((l) => Number(l['level']) >= 50);
}
