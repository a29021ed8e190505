import { z } from 'zod';
import { NODE_ID_PATTERN } from '../keys.ts';
import { FEATURE_FLAGS } from './node-messages.ts';

/**
 * The client API of a selector (PROTOCOL.md "Client HTTP"): the body of `POST /v1/jobs`, and
 * the answers of `POST /v1/jobs` and `GET /v1/jobs/:job_id`. The descriptions here are the
 * field reference: docs/JOB-API.md is generated from these schemas (scripts/gen-api-docs.ts),
 * and a test fails when the committed file differs.
 */

/**
 * What an absent or null field of `POST /v1/jobs` means. The selector applies these
 * (services/selector/job-placer.ts); the schema carries them as the documented defaults.
 */
export const JOB_DEFAULTS = {
  pipeline: {
    use_asr: true,
    use_nmt: true,
    use_tts: true,
    use_semantic: false,
    use_tone: false,
    use_phonetic: false,
    use_lexicon: false,
  },
  public: true,
  require_gpu: true,
  dry_run: false,
} as const;

const JOB_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** `use_<service type>`: a pipeline flag (the type's pattern is SERVICE_TYPE_PATTERN's). */
export const PIPELINE_FLAG = /^use_[a-z0-9][a-z0-9_.-]{0,63}$/;
const lang = z.string().min(1).max(35);
const flag = (name: keyof typeof JOB_DEFAULTS.pipeline, description: string) =>
  z.boolean().nullish().meta({ description, default: JOB_DEFAULTS.pipeline[name] });

/** `POST /v1/jobs`. Unknown fields are dropped; a field that fails validation answers 400 naming it. */
export const jobRequestSchema = z
  .object({
    job_id: z
      .string()
      .regex(JOB_ID_PATTERN, 'expected 1-128 characters of [A-Za-z0-9._:-]')
      .nullish()
      .meta({
        description:
          'Idempotency key: the same job_id again answers 200 with the first answer and never reserves twice. ' +
          'A repeat that arrives while the first is still being placed waits for it (up to 2 s). Generated ' +
          '(`job-<uuid>`) when absent. A job that could not be placed (503) gives its id back.',
      }),
    src_lang: lang.meta({
      description:
        'Source language, normalised before any comparison (`zh-Hant` → `zh`, `pt-BR` → `pt`, `iw` → `he`); ' +
        "or `auto`: the source candidates are each node's ASR languages (∩ `auto_langs`).",
    }),
    tgt_lang: lang.meta({ description: 'Target language, normalised like `src_lang`.' }),
    pipeline: z
      .object({
        use_asr: flag('use_asr', 'Speech recognition: the node needs ASR ready and ASR for `src_lang`.'),
        use_nmt: flag('use_nmt', 'Translation: the node needs NMT ready and the directed pair src → tgt.'),
        use_tts: flag('use_tts', 'Speech synthesis: the node needs TTS ready and TTS for `tgt_lang`.'),
        use_semantic: flag(
          'use_semantic',
          'Semantic repair: the node needs the semantic service ready and the source language among its semantic languages.',
        ),
        use_tone: flag(
          'use_tone',
          'Tone / voice: the node needs the tone service ready (no language check).',
        ),
        use_phonetic: flag(
          'use_phonetic',
          'Phonetic correction: the node needs the `phonetic` service ready (no language check).',
        ),
        use_lexicon: flag(
          'use_lexicon',
          'Lexicon: the node needs the `lexicon` service ready (no language check).',
        ),
      })
      .catchall(z.boolean().nullish())
      .superRefine((pipeline, ctx) => {
        for (const name of Object.keys(pipeline)) {
          if (!PIPELINE_FLAG.test(name))
            ctx.addIssue({ code: 'custom', path: [name], message: 'expected use_<service type>' });
        }
      })
      .nullish()
      .meta({
        description:
          'The services the job runs; each absent or null flag takes its default. A service that is on must be ' +
          'reported ready by the node (`model_not_available`) and brings its language check. Any other ' +
          '`use_<type>` flag (e.g. `use_punctuation`) requires a node reporting that service type ready; every ' +
          "flag is passed on in the node's `job_assign.pipeline`.",
      }),
    timeout_ms: z
      .int()
      .min(1000)
      .nullish()
      .meta({
        description:
          "The job's deadline once the node accepted it (job_ack, or delivery for nodes that do not ack): no " +
          'job_result within it and the attempt times out (job_cancel, failover). At most `SB_MAX_JOB_TIMEOUT_MS` ' +
          '(400 beyond); absent: `SB_JOB_TIMEOUT_MS`.',
      }),
    features: z
      .record(z.string(), z.boolean())
      .nullish()
      .meta({
        description:
          `Feature name → wanted; only \`true\` entries count. Known: ${FEATURE_FLAGS.join(', ')}. ` +
          'Each needs the node flag of the same name (`feature_unsupported`) and may need a service type ' +
          '(`model_not_available`; PROTOCOL.md "Feature expansion"). An unknown name answers 400.',
      }),
    routing_key: z
      .string()
      .max(1024)
      .nullish()
      .meta({
        description:
          'Affinity key (a session, a speaker): while `SB_AFFINITY` is on, jobs with the same key go to the ' +
          'same node (rendezvous hashing over the eligible nodes) as long as it stays eligible.',
      }),
    tenant_id: z
      .string()
      .max(256)
      .nullish()
      .meta({
        description:
          "The job's tenant: with a client key, its own tenant or absent (another: 403 `UNAUTHORIZED`); " +
          'an admin key may name any tenant, whose job it then is. Selection does not use it.',
      }),
    public: z.boolean().nullish().meta({
      description:
        'A public job: nodes registered with `accept_public_jobs: false` are not eligible (`not_accepting_public`).',
      default: JOB_DEFAULTS.public,
    }),
    require_gpu: z.boolean().nullish().meta({
      description: 'Only nodes with a GPU are eligible (`gpu_unavailable`).',
      default: JOB_DEFAULTS.require_gpu,
    }),
    auto_langs: z
      .array(lang)
      .max(256)
      .nullish()
      .meta({
        description:
          'With `src_lang: "auto"`: the source languages allowed (normalised); absent, null or empty = any. ' +
          'Ignored otherwise.',
      }),
    preferred_node_id: z
      .string()
      .regex(NODE_ID_PATTERN)
      .nullish()
      .meta({ description: 'Chosen when it is eligible, before affinity and the strategy.' }),
    exclude_node_ids: z
      .array(z.string().regex(NODE_ID_PATTERN))
      .max(10_000)
      .nullish()
      .meta({ description: 'Never chosen for this job (`excluded`).' }),
    payload: z
      .record(z.string(), z.unknown())
      .nullish()
      .meta({
        description:
          "Opaque to Switchboard, merged into the node's `job_assign` as given; Switchboard's own fields win. " +
          '`session_id` (string) and `utterance_index` (number) are read from it: without a session_id the job is ' +
          'its own session (`session_id` = job id, `utterance_index` as given, else 0); a session_id without an utterance_index ' +
          "gets the session's next index; a session's jobs go to the node of its previous one while that node is " +
          'eligible (`SB_SESSION_TTL_MS`). `trace_id` (string) is passed on when tracing is off. ' +
          'The whole body is limited to `SB_MAX_MESSAGE_BYTES` (413 beyond).',
      }),
    dry_run: z
      .boolean()
      .nullish()
      .meta({
        description:
          'Choose and explain without reserving: 200 with the choice and the breakdown, `job_id` and `attempt_id` ' +
          'null; nothing is recorded or dispatched.',
        default: JOB_DEFAULTS.dry_run,
      }),
  })
  .meta({ title: 'POST /v1/jobs', description: 'A job to place: what it needs of a node, and its payload.' });
export type JobRequest = z.infer<typeof jobRequestSchema>;

const count = (description: string) => z.int().min(0).meta({ description });

/** The breakdown of a selection (ARCHITECTURE.md "Selection"). */
export const breakdownSchema = z
  .object({
    total_nodes: count("Nodes in this selector's snapshot replica."),
    candidates: count('Nodes that pass the language reasons (the first five reasons of the list below).'),
    eligible: count('Nodes that pass every filter. `eligible + Σ rejected = total_nodes`.'),
    rejected: z.record(z.string(), z.int().min(1)).meta({
      description:
        'Reason → nodes rejected for it; each node is counted once, under its first failing reason in filter ' +
        'order. Only reasons with a count appear.',
    }),
    samples: z.record(z.string(), z.array(z.string()).max(3)).meta({
      description: 'Reason → up to 3 ids of nodes rejected for it (best effort for the language reasons).',
    }),
  })
  .meta({ title: 'breakdown', description: 'Why the nodes that were not chosen were not eligible.' });

/** The answer of `POST /v1/jobs`: 201 placed, 200 repeated (same job_id) or dry run. */
export const jobPlacementSchema = z
  .object({
    job_id: z.string().nullable().meta({ description: 'The job; null on a dry run.' }),
    attempt_id: z.int().min(1).nullable().meta({ description: '1 for a new job; null on a dry run.' }),
    node_id: z.string().meta({ description: 'The node chosen (on a dry run: the one that would be).' }),
    pool: z
      .string()
      .meta({ description: '`<src>:<tgt>` as normalised (`auto:<tgt>` for `src_lang: "auto"`).' }),
    snapshot: z
      .object({
        version: count("Snapshot version of the chosen node's shard in this selector's replica."),
        age_ms: count(
          'Milliseconds since that shard last changed in the replica (a delta applied or a reload).',
        ),
      })
      .meta({ description: 'The snapshot the choice was made from.' }),
    breakdown: breakdownSchema,
    selection_us: count('Microseconds the in-memory choice took (filters, breakdown, ranking; no I/O).'),
    reservation_conflicts: z
      .int()
      .min(1)
      .optional()
      .meta({
        description:
          'Present when candidates refused the reservation first (the snapshot was behind their live record); ' +
          'the next candidate was tried. Not repeated in the answer to a repeated job_id.',
      }),
    dry_run: z.literal(true).optional().meta({ description: 'Present on a dry run.' }),
  })
  .meta({ title: 'placement', description: 'Where the job went, and why.' });
export type JobPlacement = z.infer<typeof jobPlacementSchema>;

/** `503 NO_AVAILABLE_NODE` of `POST /v1/jobs` (with `Retry-After: 1`). */
export const noAvailableNodeSchema = z
  .object({
    error: z
      .object({
        code: z.literal('NO_AVAILABLE_NODE').meta({ description: 'The catalog code.' }),
        message: z.string().meta({
          description: 'e.g. `0/1000 nodes available: 788 lang_pair_unsupported, 212 capacity_exceeded`.',
        }),
      })
      .meta({ description: 'The catalog error.' }),
    breakdown: breakdownSchema,
    reservation_conflicts: z
      .int()
      .min(1)
      .optional()
      .meta({
        description:
          'Present when eligible nodes existed but every one tried refused the reservation ' +
          '(`SB_RESERVATION_ATTEMPTS` at most); the job id is given back.',
      }),
  })
  .meta({ title: 'NO_AVAILABLE_NODE', description: 'No node can take the job now.' });
export type NoAvailableNode = z.infer<typeof noAvailableNodeSchema>;

export const JOB_STATUSES = ['created', 'dispatched', 'accepted', 'running', 'finished', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

const epochMs = (description: string) => z.int().min(0).optional().meta({ description });

export const jobAttemptSchema = z.object({
  attempt_id: z.int().min(1).meta({ description: '1, 2, … in the order they were placed.' }),
  node_id: z.string().meta({ description: 'The node the attempt was placed on.' }),
  status: z
    .enum(['dispatched', 'accepted', 'running', 'finished', 'failed', 'timed_out'])
    .meta({ description: 'How far the attempt got; `timed_out` when it was released and failed over.' }),
  reason: z
    .enum(['ack_timeout', 'job_timeout', 'node_offline'])
    .optional()
    .meta({
      description:
        'Why a `timed_out` attempt timed out: not accepted within `SB_ACK_TIMEOUT_MS` (no job_ack, or never ' +
        "delivered to a node that does not ack), no result within the job's `timeout_ms` of the acceptance, " +
        'or its node went offline.',
    }),
});
export type JobAttempt = z.infer<typeof jobAttemptSchema>;

/** `GET /v1/jobs/:job_id[?wait_ms=]`: the job record. */
export const jobViewSchema = z
  .object({
    job_id: z.string().meta({ description: 'The job.' }),
    status: z.enum(JOB_STATUSES).meta({
      description:
        '`created` (id claimed, no node yet) → `dispatched` → `accepted` (job_ack) → `running` (job_started) → ' +
        '`finished` | `failed` (terminal). A failover goes back to `dispatched` with the next attempt.',
    }),
    node_id: z.string().nullable().meta({ description: 'The node of the current attempt.' }),
    attempt_id: z
      .int()
      .min(1)
      .nullable()
      .meta({ description: 'The current attempt; a late frame of an older one is ignored.' }),
    attempts: z.array(jobAttemptSchema).meta({ description: 'Every attempt, oldest first.' }),
    created_at: z.int().min(0).meta({ description: 'Server time, ms since the epoch, as every `*_at`.' }),
    dispatched_at: epochMs('The current attempt was recorded, just before its reservation dispatched it.'),
    accepted_at: epochMs('The node acked the current attempt.'),
    started_at: epochMs('The node reported job_started for the current attempt.'),
    finished_at: epochMs('Terminal: the result arrived, or the job failed.'),
    partials: z
      .array(
        z.object({
          text: z.string().meta({ description: 'The partial text as the node sent it.' }),
          is_final: z.boolean().meta({ description: "The node's `is_final` (false when absent)." }),
          at: z.int().min(0).meta({ description: 'Server time it arrived.' }),
        }),
      )
      .optional()
      .meta({
        description:
          "The current attempt's `asr_partial` texts, in arrival order (streaming ASR); present once one " +
          'arrived. Also streamed by `GET /v1/jobs/:job_id/events`.',
      }),
    result: z
      .unknown()
      .optional()
      .meta({ description: "The node's job_result as it sent it (without `type`)." }),
    error: z
      .object({
        code: z.string().meta({ description: '`JOB_TIMEOUT`, or the code the node sent.' }),
        message: z.string().meta({ description: 'What happened, for people.' }),
        details: z.unknown().optional().meta({ description: 'As the node sent it, if it did.' }),
      })
      .optional()
      .meta({
        description:
          'On `failed`: `JOB_TIMEOUT` (`SB_MAX_ATTEMPTS` attempts timed out, or no other node could take the ' +
          "next one), or the error of the node's unsuccessful job_result (`NODE_ERROR` when it sent none).",
      }),
  })
  .meta({
    title: 'GET /v1/jobs/:job_id',
    description:
      'The job. `?wait_ms=` (at most 60000) waits until a terminal status or the wait ends, then answers ' +
      "the current state (200); it answers within milliseconds of the node's job_result (pushed, not polled). " +
      'A selector holds at most `SB_MAX_JOB_WAITERS` waiting requests: beyond, 429 RATE_LIMITED (`Retry-After: 1`). ' +
      'Unknown job: 404 NOT_FOUND. Kept `SB_JOB_RETENTION_MS` after creation.',
  });
export type JobView = z.infer<typeof jobViewSchema>;

/** `GET /v1/nodes` paging: a page holds `limit` nodes, this many unless asked otherwise, never more than `max`. */
export const NODE_PAGE = { defaultLimit: 500, maxLimit: 5000 } as const;

/** `GET /v1/nodes?limit=&cursor=`: the query. Anything else in the query is ignored. */
export const nodeListQuerySchema = z
  .object({
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(NODE_PAGE.maxLimit)
      .optional()
      .meta({
        description: `Nodes per page, 1–${NODE_PAGE.maxLimit}; absent: ${NODE_PAGE.defaultLimit}. Not an integer in range: 400 naming \`limit\`.`,
        default: NODE_PAGE.defaultLimit,
      }),
    cursor: z
      .string()
      .regex(NODE_ID_PATTERN, 'expected the next_cursor of the previous page')
      .optional()
      .meta({
        description:
          'The `next_cursor` of the previous page; absent: the first page. Pages are in node id order, and a ' +
          'page starts after the cursor, so a node added or removed meanwhile never shifts the pages that follow.',
      }),
  })
  .meta({
    title: 'GET /v1/nodes',
    description: 'The nodes in this selector’s snapshot replica, a page at a time.',
  });
export type NodeListQuery = z.infer<typeof nodeListQuerySchema>;

/** `GET /v1/nodes`: a page. */
export const nodeListSchema = z
  .object({
    nodes: z
      .array(
        z.looseObject({
          id: z.string().meta({ description: 'The node id; pages are in this order.' }),
          shard: z.int().min(0).meta({ description: 'Its node shard (crc32(id) mod SB_SHARDS).' }),
        }),
      )
      .meta({
        description:
          'Up to `limit` nodes in id order: each its snapshot entry as the selectors see it (shared/snapshot-entry.ts: ' +
          '`id`, `status`, `draining`, `pools`, load, …) and its `shard`.',
      }),
    next_cursor: z.string().nullable().meta({
      description: 'Pass it as `cursor` for the next page; null on the last page.',
    }),
  })
  .meta({ title: 'GET /v1/nodes page', description: 'One page of nodes (200).' });
export type NodeList = z.infer<typeof nodeListSchema>;
