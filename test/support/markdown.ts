import { readdirSync, readFileSync } from 'node:fs';

/** Reading the repository's Markdown docs in tests that hold them to the code. */

export const ROOT = new URL('../../', import.meta.url);

export function readRepoFile(path: string): string {
  return readFileSync(new URL(path, ROOT), 'utf8');
}

/** Every file under `dir` (repository-relative, no trailing slash) whose name ends with `suffix`. */
export function repoFiles(dir: string, suffix: string): string[] {
  return readdirSync(new URL(`${dir}/`, ROOT), { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith(suffix) && !path.split('/').includes('node_modules'))
    .map((path) => `${dir}/${path}`);
}

/**
 * The text under a heading (`## Configuration`), up to the next heading of the same or a higher
 * level; throws when the heading is missing, so a renamed section fails the test that reads it.
 */
export function section(text: string, heading: string): string {
  const level = /^#+/.exec(heading)![0].length;
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start < 0) throw new Error(`no section "${heading}"`);
  const end = lines.findIndex(
    (line, i) => i > start && /^#+ /.test(line) && /^#+/.exec(line)![0].length <= level,
  );
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** The text up to the first subheading (`###` or deeper) of a section. */
export function beforeSubsections(text: string): string {
  const at = text.search(/^#{3,} /m);
  return at < 0 ? text : text.slice(0, at);
}

/**
 * The body rows of the first Markdown table in `text`, as trimmed cells (`\|` kept as `|`);
 * empty when there is none.
 */
export function tableRows(text: string): string[][] {
  const lines = text.split('\n');
  const head = lines.findIndex((line, i) => line.startsWith('|') && /^\|[-| :]+\|$/.test(lines[i + 1] ?? ''));
  if (head < 0) return [];
  const rows: string[][] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .slice(1, line.endsWith('|') ? -1 : undefined)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim().replaceAll('\\|', '|'));
    rows.push(cells);
  }
  return rows;
}

/** `code` when a cell is exactly one code span, else null. */
export function codeSpan(cell: string): string | null {
  const match = /^`([^`]+)`$/.exec(cell);
  return match ? match[1]! : null;
}
