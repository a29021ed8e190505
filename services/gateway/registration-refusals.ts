import type { SwitchboardError } from '../../shared/errors.ts';
import { NODE_ID_PATTERN } from '../../shared/keys.ts';
import type { Logger } from '../../shared/logger.ts';
import { describeValue } from '../../shared/protocol/json-message.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';

/** Answers that say "retry", not "your registration is wrong": counted as outcomes only. */
const TRANSIENT = new Set(['RATE_LIMITED', 'SCHEDULER_DEPENDENCY_DOWN', 'SHUTTING_DOWN', 'INTERNAL']);

/**
 * A node_register that failed (WebSocket or HTTP). A refusal is made visible to operators —
 * `sb_registration_refusals_total{code,field}` and a `node_register refused` warning with the
 * node's remote address, the code and the field — because the lingua client ignores error
 * frames and shows nothing.
 */
export function recordRegistrationFailure(
  metrics: GatewayMetrics,
  log: Logger,
  error: SwitchboardError,
  body: unknown,
  remoteAddress: string,
): void {
  metrics.registrations.inc({ outcome: error.code });
  if (TRANSIENT.has(error.code)) return;
  // every message names its field first: "hardware.cpu_cores: Too small: …"
  // list indexes as `*`: a node must not mint a time series per index (`installed_models.*.version`)
  const field = (/^([^\s:;]+):/.exec(error.message)?.[1] ?? '(none)').replace(/\.\d+(?=\.|$)/g, '.*');
  metrics.registrationRefusals.inc({ code: error.code, field });
  const claimed = typeof body === 'object' && body !== null ? (body as { node_id?: unknown }).node_id : null;
  // an invalid node_id is logged cut short (describeValue), never whole
  const nodeId =
    typeof claimed === 'string' ? (NODE_ID_PATTERN.test(claimed) ? claimed : describeValue(claimed)) : null;
  log.warn(
    { remoteAddress, nodeId, code: error.code, field, reason: error.message },
    'node_register refused',
  );
}
