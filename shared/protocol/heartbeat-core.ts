import { NODE_ID_PATTERN } from '../keys.ts';

/**
 * The hand-written check of a heartbeat's core fields (node_id, timestamp, resource_usage,
 * processing_metrics, rerun_metrics, asr_metrics) for the hot path: the fields the gateway
 * writes, read straight off the parsed frame, with nothing allocated. It accepts a strict
 * subset of what `nodeHeartbeatCoreSchema` (zod) accepts: when it says no, the caller runs the
 * schema, which either throws INVALID_MESSAGE naming the field exactly as before or accepts an
 * unusual but valid form. Measured (bench/alloc.ts): zod's safeParse of this shape allocates
 * ~2.4 KB per heartbeat; this, nothing. test/unit/heartbeat-core.test.ts holds it to the schema.
 */

/** The core fields as the gateway reads them (a validated frame of either form). */
export interface HeartbeatCore {
  node_id: string;
  timestamp: number;
  resource_usage: {
    cpu_percent: number;
    gpu_percent?: number | null | undefined;
    gpu_mem_percent?: number | null | undefined;
    mem_percent: number;
    running_jobs: number;
  };
}

const percent = (v: unknown): boolean => typeof v === 'number' && v >= 0 && v <= 100;
const optionalPercent = (v: unknown): boolean => v === undefined || v === null || percent(v);

/** True only when the schema accepts `body`'s core fields as they are. */
export function isHeartbeatCore(
  body: Record<string, unknown>,
): body is Record<string, unknown> & HeartbeatCore {
  const id = body['node_id'];
  if (typeof id !== 'string' || !NODE_ID_PATTERN.test(id)) return false;
  const ts = body['timestamp'];
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) return false;
  const usage = body['resource_usage'];
  if (typeof usage !== 'object' || usage === null || Array.isArray(usage)) return false;
  const u = usage as Record<string, unknown>;
  if (!percent(u['cpu_percent']) || !percent(u['mem_percent'])) return false;
  if (!optionalPercent(u['gpu_percent']) || !optionalPercent(u['gpu_mem_percent'])) return false;
  const running = u['running_jobs'];
  if (typeof running !== 'number' || !Number.isSafeInteger(running) || running < 0 || running > 100000)
    return false;
  const metrics = body['processing_metrics'];
  return (
    metrics === undefined ||
    metrics === null ||
    (typeof metrics === 'object' &&
      !Array.isArray(metrics) &&
      Object.getPrototypeOf(metrics) === Object.prototype)
  );
}
