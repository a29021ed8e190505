import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export interface LaunchedService {
  name: string;
  proc: ChildProcess;
  port: number;
  pid: number;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/** Starts tracing before the service loads when OTEL_EXPORTER_OTLP_ENDPOINT is set (shared/telemetry.ts). */
const TELEMETRY_PRELOAD = new URL('../../shared/telemetry-preload.ts', import.meta.url).href;

/**
 * Starts `services/<service>/main.ts` as a child (`node --import tsx --import
 * shared/telemetry-preload.ts`, as `npm run start:<x>`),
 * forwards its log lines with a `[name]` tag when `echo`, and resolves once it logged
 * `"msg":"listening"` with its port.
 */
export async function launchService(
  name: string,
  entry: string,
  env: Record<string, string>,
  options: { echo?: (line: string) => void; timeoutMs?: number } = {},
): Promise<LaunchedService> {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--import', TELEMETRY_PRELOAD, entry], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(proc, 'exit').then(([code]) => code as number | null);
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    options.echo?.(`[${name}] ${c.toString().trimEnd()}`);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 30000;
    const timer = setTimeout(() => {
      proc.kill('SIGKILL'); // never leave a half-started service behind
      reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    let buffered = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        options.echo?.(`[${name}] ${line}`);
        if (line.includes('"msg":"listening"')) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready:\n${stderr}`));
    });
  });
  return { name, proc, port, pid: proc.pid!, exited };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
export async function stopService(service: LaunchedService, graceMs = 10000): Promise<number | null> {
  if (service.proc.exitCode !== null || service.proc.signalCode !== null) return service.proc.exitCode;
  service.proc.kill('SIGTERM');
  const timer = setTimeout(() => service.proc.kill('SIGKILL'), graceMs);
  const code = await service.exited;
  clearTimeout(timer);
  return code;
}
