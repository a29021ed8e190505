import { z } from 'zod';
import type {
  capabilityByTypeSchema,
  installedModelSchema,
  installedServiceSchema,
  languageCapabilitiesSchema,
  nodeRegisterSchema,
  resourceUsageSchema,
} from '../shared/protocol/node-messages.ts';

/**
 * The node side of the wire protocol (docs/PROTOCOL.md "Node WebSocket"): what the agent sends
 * reuses the gateway's schemas as types; what it receives is parsed leniently here (unknown
 * fields kept, so a job's opaque payload reaches the handler as the client gave it).
 */

/** A `node_register` body without `type`. */
export type RegistrationBody = z.input<typeof nodeRegisterSchema>;

export type ResourceUsage = z.input<typeof resourceUsageSchema>;

/**
 * What the agent's heartbeat callback reports. The agent adds `node_id`, a strictly increasing
 * `timestamp` and `resource_usage.running_jobs` (from the jobs it is running); missing
 * `installed_services` / `capability_by_type` are taken from the registration. Leave
 * `language_capabilities` / `installed_models` out while unchanged (the gateway then keeps
 * the stored ones).
 */
export interface HeartbeatParts {
  resource_usage: Omit<ResourceUsage, 'running_jobs'> & { running_jobs?: number };
  installed_services?: z.input<typeof installedServiceSchema>[];
  capability_by_type?: z.input<typeof capabilityByTypeSchema>[];
  installed_models?: z.input<typeof installedModelSchema>[] | null;
  language_capabilities?: z.input<typeof languageCapabilitiesSchema> | null;
  processing_metrics?: Record<string, unknown> | null;
  rerun_metrics?: unknown;
  asr_metrics?: unknown;
}

const nullableText = z.string().nullish();

export const registerAckSchema = z.looseObject({
  type: z.literal('node_register_ack'),
  node_id: z.string().min(1),
  status: z.string().optional(),
  node_token: z.string().nullish(),
  node_token_expires_at: z.number().nullish(),
  heartbeat_interval_ms: z.number().positive(),
  node_ttl_ms: z.number().positive().optional(),
});
export type RegisterAck = z.infer<typeof registerAckSchema>;

export const errorFrameSchema = z.looseObject({
  type: z.literal('error'),
  code: z.string(),
  message: z.string().default(''),
});
export type ErrorFrame = z.infer<typeof errorFrameSchema>;

/** `job_assign`: Switchboard's fields plus the client's payload (audio, audio_format, …). */
export const jobAssignSchema = z.looseObject({
  type: z.literal('job_assign'),
  job_id: z.string().min(1),
  attempt_id: z.number().int().min(1),
  session_id: nullableText,
  utterance_index: z.number().nullish(),
  src_lang: nullableText,
  tgt_lang: nullableText,
  dialect: z.unknown().optional(),
  features: z.record(z.string(), z.unknown()).nullish(),
  pipeline: z.record(z.string(), z.unknown()).nullish(),
  trace_id: nullableText,
});
export type JobAssign = z.infer<typeof jobAssignSchema>;

export const jobCancelSchema = z.looseObject({
  type: z.literal('job_cancel'),
  job_id: z.string().min(1),
  trace_id: nullableText,
  reason: nullableText,
});
export type JobCancel = z.infer<typeof jobCancelSchema>;

export const nodeControlSchema = z.looseObject({
  type: z.literal('node_control'),
  command: z.string(),
  reason: nullableText,
});
export type NodeControl = z.infer<typeof nodeControlSchema>;

export type GatewayFrame = RegisterAck | ErrorFrame | JobAssign | JobCancel | NodeControl;

const gatewayFrameSchema = z.discriminatedUnion('type', [
  registerAckSchema,
  errorFrameSchema,
  jobAssignSchema,
  jobCancelSchema,
  nodeControlSchema,
]);

export type ParsedFrame =
  { ok: true; frame: GatewayFrame } | { ok: false; type: string | null; problem: string };

/** Parses one text frame from the gateway; never throws. */
export function parseGatewayFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, type: null, problem: 'not valid JSON' };
  }
  const type =
    typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string'
      ? (value as { type: string }).type
      : null;
  const parsed = gatewayFrameSchema.safeParse(value);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue?.path.map(String).join('.') || '(root)';
  return { ok: false, type, problem: `${where}: ${issue?.message ?? 'invalid'}` };
}

/** What a job handler returns: the `job_result` fields besides the ids (success defaults to true). */
export interface JobOutcome {
  success?: boolean;
  text_asr?: string | null;
  text_translated?: string | null;
  tts_audio?: string | null;
  tts_format?: string | null;
  extra?: unknown;
  processing_time_ms?: number | null;
  utterance_index?: number | null;
  error?: { code: string; message: string; details?: unknown } | null;
  [field: string]: unknown;
}
