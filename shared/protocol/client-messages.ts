import { z } from 'zod';
import { NODE_ID_PATTERN } from '../keys.ts';

/** `POST /v1/jobs` (PROTOCOL.md "Client HTTP"). Defaults applied here; unknown fields dropped. */
export const jobRequestSchema = z.object({
  job_id: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'expected 1-128 characters of [A-Za-z0-9._:-]')
    .nullish(),
  src_lang: z.string().min(1).max(35),
  tgt_lang: z.string().min(1).max(35),
  pipeline: z
    .object({
      use_asr: z.boolean().nullish(),
      use_nmt: z.boolean().nullish(),
      use_tts: z.boolean().nullish(),
      use_semantic: z.boolean().nullish(),
      use_tone: z.boolean().nullish(),
    })
    .nullish(),
  features: z.record(z.string(), z.boolean()).nullish(),
  routing_key: z.string().max(1024).nullish(),
  tenant_id: z.string().max(256).nullish(),
  public: z.boolean().nullish(),
  require_gpu: z.boolean().nullish(),
  auto_langs: z.array(z.string().min(1).max(35)).max(256).nullish(),
  preferred_node_id: z.string().regex(NODE_ID_PATTERN).nullish(),
  exclude_node_ids: z.array(z.string().regex(NODE_ID_PATTERN)).max(10_000).nullish(),
  payload: z.record(z.string(), z.unknown()).nullish(),
  dry_run: z.boolean().nullish(),
});
export type JobRequest = z.infer<typeof jobRequestSchema>;
