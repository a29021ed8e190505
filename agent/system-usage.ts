import { cpus, freemem, totalmem } from 'node:os';
import type { HeartbeatParts } from './protocol.ts';

const round1 = (x: number): number => Math.round(x * 10) / 10;
const clampPercent = (x: number): number => Math.min(100, Math.max(0, round1(x)));

/**
 * The default heartbeat of an agent given none: host CPU (busy share of the CPU time since
 * the previous sample) and memory. No GPU figures: a real agent reports those itself.
 */
export function systemUsageSampler(): () => HeartbeatParts {
  let previous = cpuTimes();
  return () => {
    const now = cpuTimes();
    const total = now.total - previous.total;
    const busy = total > 0 ? (100 * (total - (now.idle - previous.idle))) / total : 0;
    previous = now;
    const mem = totalmem() > 0 ? (100 * (totalmem() - freemem())) / totalmem() : 0;
    return { resource_usage: { cpu_percent: clampPercent(busy), mem_percent: clampPercent(mem) } };
  };
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}
