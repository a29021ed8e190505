import { z } from 'zod';
import {
  breakdownSchema,
  jobPlacementSchema,
  jobRequestSchema,
  jobViewSchema,
  NODE_PAGE,
  noAvailableNodeSchema,
  nodeListQuerySchema,
  nodeListSchema,
} from '../../shared/protocol/client-messages.ts';
import { REJECT_REASON_TEXT, REJECT_REASONS } from '../../services/selector/reject-reasons.ts';

/**
 * Renders docs/JOB-API.md from the zod schemas of the client API (z.toJSONSchema), so that the
 * field reference cannot drift from what the selector validates and answers. Pure: the file is
 * written by scripts/gen-api-docs.ts and compared by test/unit/job-api-docs.test.ts.
 */

export const JOB_API_DOCS_PATH = 'docs/JOB-API.md';
export const REGENERATE_COMMAND = 'npm run docs:api';

interface JsonSchema {
  type?: string | string[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  enum?: unknown[];
  const?: unknown;
  description?: string;
  title?: string;
  default?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
}

export interface Row {
  name: string;
  type: string;
  required: boolean;
  default: string;
  constraints: string;
  description: string;
}

/** Schemas rendered as a section of their own; a field of that shape links to it. */
const SECTIONS = new Map<string, string>([['breakdown', '#breakdown']]);

/** Unwraps `X | null` (anyOf or a type list): the inner schema and whether null is allowed. */
function unwrapNull(schema: JsonSchema): { inner: JsonSchema; nullable: boolean } {
  if (schema.anyOf) {
    const rest = schema.anyOf.filter((s) => s.type !== 'null');
    if (rest.length === 1 && rest.length < schema.anyOf.length) return { inner: rest[0]!, nullable: true };
  }
  if (Array.isArray(schema.type) && schema.type.includes('null')) {
    const rest = schema.type.filter((t) => t !== 'null');
    return { inner: { ...schema, type: rest.length === 1 ? rest[0] : rest }, nullable: true };
  }
  return { inner: schema, nullable: false };
}

function typeName(schema: JsonSchema): string {
  if (schema.title && SECTIONS.has(schema.title)) return `[${schema.title}](${SECTIONS.get(schema.title)})`;
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.enum) return schema.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (schema.type === 'array') return `${schema.items ? typeName(unwrapNull(schema.items).inner) : 'any'}[]`;
  if (schema.type === 'object' && !schema.properties && typeof schema.additionalProperties === 'object') {
    return `object (string → ${typeName(schema.additionalProperties)})`;
  }
  if (Array.isArray(schema.type)) return schema.type.join(' or ');
  return schema.type ?? 'any';
}

/** Bounds at ±MAX_SAFE_INTEGER are zod's integer range, not a constraint of the API. */
const bound = (n: number | undefined): n is number =>
  n !== undefined && Math.abs(n) < Number.MAX_SAFE_INTEGER;

function constraints(schema: JsonSchema): string[] {
  const out: string[] = [];
  if (schema.minLength !== undefined || schema.maxLength !== undefined) {
    out.push(`length ${schema.minLength ?? 0}–${schema.maxLength ?? '∞'}`);
  }
  if (schema.pattern) out.push(`pattern \`${schema.pattern}\``);
  if (bound(schema.minimum) && schema.minimum !== 0) out.push(`≥ ${schema.minimum}`);
  if (bound(schema.maximum)) out.push(`≤ ${schema.maximum}`);
  if (schema.minItems !== undefined) out.push(`≥ ${schema.minItems} items`);
  if (schema.maxItems !== undefined) out.push(`≤ ${schema.maxItems} items`);
  if (schema.type === 'array' && schema.items) {
    const each = constraints(unwrapNull(schema.items).inner);
    if (each.length > 0) out.push(`each: ${each.join(', ')}`);
  }
  if (typeof schema.additionalProperties === 'object') {
    const each = constraints(schema.additionalProperties);
    if (each.length > 0) out.push(`each value: ${each.join(', ')}`);
  }
  return out;
}

function rows(schema: JsonSchema, prefix = ''): Row[] {
  const required = new Set(schema.required ?? []);
  const out: Row[] = [];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const { inner, nullable } = unwrapNull(property);
    out.push({
      name: `${prefix}${name}`,
      type: typeName(inner) + (nullable ? ' or null' : ''),
      required: required.has(name),
      default: property.default !== undefined ? `\`${JSON.stringify(property.default)}\`` : '',
      constraints: constraints(inner).join('; '),
      description: property.description ?? inner.description ?? '',
    });
    const titled = inner.title !== undefined && SECTIONS.has(inner.title);
    if (inner.type === 'object' && inner.properties && !titled) out.push(...rows(inner, `${prefix}${name}.`));
    const item = inner.type === 'array' && inner.items ? unwrapNull(inner.items).inner : null;
    if (item?.type === 'object' && item.properties) out.push(...rows(item, `${prefix}${name}[].`));
  }
  return out;
}

const cell = (text: string) => text.replaceAll('\n', ' ').replace(/(?<!\\)\|/g, '\\|');

/** The rows of a schema's field table: one per field, nested fields as `parent.child` / `list[].child`. */
export function fieldRows(schema: z.ZodType, io: 'input' | 'output'): Row[] {
  return rows(z.toJSONSchema(schema, { io }) as JsonSchema);
}

/** The schemas docs/JOB-API.md documents, and whether each is read (input) or written (output). */
export const DOCUMENTED_SCHEMAS = [
  { name: 'POST /v1/jobs', schema: jobRequestSchema, io: 'input' },
  { name: 'placement', schema: jobPlacementSchema, io: 'output' },
  { name: 'breakdown', schema: breakdownSchema, io: 'output' },
  { name: 'NO_AVAILABLE_NODE', schema: noAvailableNodeSchema, io: 'output' },
  { name: 'GET /v1/jobs/:job_id', schema: jobViewSchema, io: 'output' },
  { name: 'GET /v1/nodes', schema: nodeListQuerySchema, io: 'input' },
  { name: 'GET /v1/nodes page', schema: nodeListSchema, io: 'output' },
] as const;

function table(schema: z.ZodType, io: 'input' | 'output'): string {
  const json = z.toJSONSchema(schema, { io }) as JsonSchema;
  const lines = [
    '| field | type | required | default | constraints | description |',
    '|---|---|---|---|---|---|',
    ...rows(json).map(
      (r) =>
        `| \`${r.name}\` | ${cell(r.type)} | ${r.required ? 'yes' : 'no'} | ${cell(r.default)} | ${cell(r.constraints)} | ${cell(r.description)} |`,
    ),
  ];
  return `${json.description ?? ''}\n\n${lines.join('\n')}`;
}

/** The whole of docs/JOB-API.md. */
export function renderJobApiDocs(): string {
  const reasons = REJECT_REASONS.map(
    (reason, i) => `| ${i + 1} | \`${reason}\` | ${cell(REJECT_REASON_TEXT[reason])} |`,
  );
  return `<!-- Generated from the zod schemas in shared/protocol/client-messages.ts by scripts/gen-api-docs.ts.
     Do not edit by hand: change the schemas (their .meta descriptions), then run
     ${REGENERATE_COMMAND} -->

# Job API reference

The client API of a selector (\`http://<selector>:8081\` by default), field by field. Every
request carries \`Authorization: Bearer <key>\`, a client key (\`SB_API_KEYS\`, \`SB_API_KEY\`) or an
admin key (401 \`UNAUTHORIZED\` otherwise; a job is its key's tenant's: README "Credentials"), and a JSON
body of at most \`SB_MAX_MESSAGE_BYTES\`. Errors are \`{"error":{"code","message"}}\` with the codes
of the catalog (README "Errors"); a field that fails validation answers 400 \`INVALID_MESSAGE\`
with a message naming it (\`src_lang: Too small: expected string to have >=1 characters\`). The
read and admin routes are in PROTOCOL.md "Client HTTP".

"required: no" fields may also be \`null\` where the type says so; \`null\` means the same as
absent (the default). Unknown fields are dropped.

## POST /v1/jobs

${table(jobRequestSchema, 'input')}

## 201 Created, 200 OK: the placement

201 for a new job; 200 for a repeated \`job_id\` of the same tenant (the first answer again) and
for a dry run; 409 \`JOB_ID_CONFLICT\` for a \`job_id\` another tenant's job holds.

${table(jobPlacementSchema, 'output')}

## breakdown

${table(breakdownSchema, 'output')}

### Rejection reasons, in filter order

A node counts under the first reason it fails. The language reasons (1–5) are answered from
the selector's indexes where they can be; the others are checked on each remaining node.

| # | reason | the node is rejected when |
|---|---|---|
${reasons.join('\n')}

## 503 Service Unavailable: NO_AVAILABLE_NODE

Sent with \`Retry-After: 1\`. What to do about each reason: README "Troubleshooting".

${table(noAvailableNodeSchema, 'output')}

## GET /v1/jobs/:job_id

${table(jobViewSchema, 'output')}

## GET /v1/nodes (admin key)

Query parameters, validated like a body: a bad one answers 400 \`INVALID_MESSAGE\` naming it
(\`limit: Too big: expected number to be <=${NODE_PAGE.maxLimit}\`). Walk the fleet by passing each
page's \`next_cursor\` as the next \`cursor\` until it is null.

${table(nodeListQuerySchema, 'input')}

### 200 OK: a page

${table(nodeListSchema, 'output')}
`;
}
