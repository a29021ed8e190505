/**
 * The node messages the benchmarks send. A copy of test/support/node-fixtures.ts on purpose:
 * a benchmark's payload must not drift when test fixtures change, or results of two commits
 * stop being comparable. Change these only together with a note in the result history.
 */

export const BENCH_NODE_SERVICES = [
  { service_id: 'asr-1', type: 'asr', device: 'gpu', status: 'running', mem_mb: 2100 },
  { service_id: 'nmt-1', type: 'nmt', device: 'gpu', status: 'running' },
  { service_id: 'tts-1', type: 'tts', device: 'gpu', status: 'running' },
];

export const BENCH_NODE_CAPABILITY_BY_TYPE = [
  { type: 'asr', ready: true },
  { type: 'nmt', ready: true },
  { type: 'tts', ready: true },
];

export const BENCH_NODE_LANGUAGES = {
  asr_languages: ['zh', 'en', 'ja'],
  tts_languages: ['zh', 'en'],
  nmt_capabilities: [{ model_id: 'm2m', languages: ['zh', 'en', 'ja'], rule: 'any_to_any' }],
};

/**
 * `node_register` body (without `type`) for `nodeId`. `overrides` replaces top-level fields
 * (the selector scenario raises `max_concurrent_jobs`, a registration-only field that no
 * heartbeat carries); without it the body is the frozen one.
 */
export function registerBody(
  nodeId: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    node_id: nodeId,
    version: '2.3.1',
    capability_schema_version: '2.0',
    platform: 'linux',
    hardware: { cpu_cores: 16, memory_gb: 64, gpus: [{ name: 'RTX 4090', memory_gb: 24 }] },
    installed_models: [{ model_id: 'whisper-large', kind: 'asr', version: '3' }],
    installed_services: BENCH_NODE_SERVICES,
    capability_by_type: BENCH_NODE_CAPABILITY_BY_TYPE,
    features_supported: { emotion_detection: true },
    accept_public_jobs: true,
    language_capabilities: BENCH_NODE_LANGUAGES,
    max_concurrent_jobs: 3,
    ...overrides,
  };
}

export const benchNodeId = (i: number): string => `bench-node-${String(i).padStart(6, '0')}`;

/** Load figures of a node's k-th heartbeat: they move a little; capabilities never do. */
export function heartbeatLoad(nodeIndex: number, k: number): { cpu: number; gpu: number; mem: number } {
  return { cpu: 20 + ((k * 7 + nodeIndex) % 9), gpu: 30 + ((k + nodeIndex) % 5), mem: 50 + (k % 3) };
}

/** The capability part of every heartbeat, identical to what the node registered. */
const CAPABILITY_TAIL = JSON.stringify({
  installed_services: BENCH_NODE_SERVICES,
  capability_by_type: BENCH_NODE_CAPABILITY_BY_TYPE,
  language_capabilities: BENCH_NODE_LANGUAGES,
}).slice(1, -1);

/**
 * A `node_heartbeat` frame as text, built by concatenation (JSON.stringify of the whole
 * body would make the load generator, not the gateway, the bottleneck). `load` replaces the
 * scheduled load figures (the snapshot scenario's staleness probe); by default they are
 * heartbeatLoad(nodeIndex, k).
 */
export function heartbeatFrame(
  nodeId: string,
  nodeIndex: number,
  k: number,
  timestamp: number,
  load = heartbeatLoad(nodeIndex, k),
): string {
  const { cpu, gpu, mem } = load;
  return (
    `{"type":"node_heartbeat","node_id":"${nodeId}","timestamp":${timestamp},` +
    `"resource_usage":{"cpu_percent":${cpu},"gpu_percent":${gpu},"gpu_mem_percent":40,"mem_percent":${mem},"running_jobs":0},` +
    `${CAPABILITY_TAIL}}`
  );
}
