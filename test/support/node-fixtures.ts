import { capabilityPart, servicesPart, staticPart } from '../../shared/capability-digest.ts';
import { nodeRegisterSchema } from '../../shared/protocol/node-messages.ts';
import type { HeartbeatPolicy, RegistrationWrite } from '../../shared/store/node-shard.ts';
/** Valid node protocol messages (PROTOCOL.md) to start tests from. */

export function registerBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    node_id: 'node-test-1',
    version: '2.3.1',
    capability_schema_version: '2.0',
    platform: 'linux',
    hardware: { cpu_cores: 16, memory_gb: 64, gpus: [{ name: 'RTX 4090', memory_gb: 24 }] },
    installed_models: [{ model_id: 'whisper-large', kind: 'asr', version: '3' }],
    installed_services: [
      { service_id: 'asr-1', type: 'asr', device: 'gpu', status: 'running', mem_mb: 2100 },
      { service_id: 'nmt-1', type: 'nmt', device: 'gpu', status: 'running' },
      { service_id: 'tts-1', type: 'tts', device: 'gpu', status: 'running' },
    ],
    capability_by_type: [
      { type: 'asr', ready: true },
      { type: 'nmt', ready: true },
      { type: 'tts', ready: true },
    ],
    features_supported: { emotion_detection: true },
    accept_public_jobs: true,
    acks_jobs: true,
    language_capabilities: {
      asr_languages: ['zh', 'en', 'ja'],
      tts_languages: ['zh', 'en'],
      nmt_capabilities: [{ model_id: 'm2m', languages: ['zh', 'en', 'ja'], rule: 'any_to_any' }],
    },
    max_concurrent_jobs: 3,
    ...overrides,
  };
}

export function heartbeatBody(
  nodeId: string,
  overrides: Record<string, unknown> = {},
  usage: Record<string, unknown> = {},
): Record<string, unknown> {
  const reg = registerBody();
  return {
    node_id: nodeId,
    timestamp: Date.now(),
    resource_usage: {
      cpu_percent: 20,
      gpu_percent: 30,
      gpu_mem_percent: 40,
      mem_percent: 50,
      running_jobs: 0,
      ...usage,
    },
    installed_services: reg['installed_services'],
    capability_by_type: reg['capability_by_type'],
    language_capabilities: reg['language_capabilities'],
    ...overrides,
  };
}

export const frame = (type: string, body: Record<string, unknown>): string =>
  JSON.stringify({ type, ...body });

/** What the gateway hands NodeShardStore.register for registerBody({ node_id }) (3 slots, a GPU). */
export function registrationWrite(nodeId: string): RegistrationWrite {
  const reg = nodeRegisterSchema.parse(registerBody({ node_id: nodeId }));
  return {
    nodeId,
    hasGpu: true,
    maxJobs: 3,
    parts: {
      static: staticPart(reg, 3),
      svc: servicesPart(reg.installed_services, reg.capability_by_type),
      lang: capabilityPart(reg.language_capabilities ?? {}),
    },
  };
}

/** Registration overrides of a node serving only French and German (no zh/en pair). */
export const FR_DE_NODE = {
  language_capabilities: {
    asr_languages: ['fr', 'de'],
    tts_languages: ['fr', 'de'],
    nmt_capabilities: [{ model_id: 'm', languages: ['fr', 'de'], rule: 'any_to_any' }],
  },
};

/** The heartbeat policy of the store and script tests (the services' defaults, but SB_REQUIRE_GPU off). */
export const TEST_NODE_POLICY: HeartbeatPolicy = {
  requireGpu: false,
  loadChangeThreshold: 5,
  snapshotMaxAgeMs: 30_000,
  unhealthyHeartbeats: 3,
  reorderWindowMs: 2000,
};
