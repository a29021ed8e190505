import { writeFileSync } from 'node:fs';
import { JOB_API_DOCS_PATH, renderJobApiDocs } from './lib/job-api-docs.ts';

/**
 * Writes docs/JOB-API.md from the zod schemas of the client API (shared/protocol/client-messages.ts).
 * Run from the repository root: npm run docs:api (node --import tsx scripts/gen-api-docs.ts)
 */
writeFileSync(new URL(`../${JOB_API_DOCS_PATH}`, import.meta.url), renderJobApiDocs());
console.log(`wrote ${JOB_API_DOCS_PATH}`);
