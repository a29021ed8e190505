import type { SwitchboardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
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
  const field = /^([^\s:;]+):/.exec(error.message)?.[1] ?? '(none)';
  metrics.registrationRefusals.inc({ code: error.code, field });
  const nodeId =
    typeof body === 'object' && body !== null && typeof (body as { node_id?: unknown }).node_id === 'string'
      ? (body as { node_id: string }).node_id
      : null;
  log.warn(
    { remoteAddress, nodeId, code: error.code, field, reason: error.message },
    'node_register refused',
  );
}
