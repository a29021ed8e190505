import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DOCUMENTED_SCHEMAS,
  fieldRows,
  JOB_API_DOCS_PATH,
  REGENERATE_COMMAND,
  renderJobApiDocs,
} from '../../scripts/lib/job-api-docs.ts';

/** docs/JOB-API.md is generated from the zod schemas of the client API; these keep it so. */
describe('docs/JOB-API.md', () => {
  it('is what the generator makes of the current schemas', () => {
    const committed = readFileSync(new URL(`../../${JOB_API_DOCS_PATH}`, import.meta.url), 'utf8');
    const generated = renderJobApiDocs();
    // compared line by line so that a failure shows the first line that differs
    const [a, b] = [committed.split('\n'), generated.split('\n')];
    const first = Array.from({ length: Math.max(a.length, b.length) }, (_, i) => i).find(
      (i) => a[i] !== b[i],
    );
    expect(
      committed === generated,
      `${JOB_API_DOCS_PATH} is out of date (first difference at line ${(first ?? 0) + 1}): the schemas in ` +
        `shared/protocol/client-messages.ts changed. Regenerate it with \`${REGENERATE_COMMAND}\` and commit it.`,
    ).toBe(true);
  });

  it('describes every field of every documented schema', () => {
    for (const { name, schema, io } of DOCUMENTED_SCHEMAS) {
      const undescribed = fieldRows(schema, io)
        .filter((row) => row.description.trim() === '')
        .map((row) => row.name);
      expect(undescribed, `${name}: add .meta({ description }) to these fields`).toEqual([]);
    }
  });

  it('documents every field the POST /v1/jobs schema accepts', () => {
    const text = renderJobApiDocs();
    const fields = fieldRows(DOCUMENTED_SCHEMAS[0].schema, 'input').map((row) => row.name);
    expect(fields).toEqual(expect.arrayContaining(['job_id', 'src_lang', 'tgt_lang', 'pipeline.use_asr']));
    for (const field of fields) expect(text, field).toContain(`| \`${field}\` |`);
  });
});
