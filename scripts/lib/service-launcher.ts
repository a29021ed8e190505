import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { formatStartFailure, LogTail } from './service-log-tail.ts';

export interface LaunchedService {
  name: string;
  proc: ChildProcess;
  port: number;
  pid: number;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Resolves once it has exited and its output is read (lastLines() is complete). */
  closed: Promise<void>;
  /** Its last log lines (stdout and stderr), for saying why it stopped. */
  lastLines(): string[];
}

/** Starts tracing before the service loads when OTEL_EXPORTER_OTLP_ENDPOINT is set (shared/telemetry.ts). */
const TELEMETRY_PRELOAD = new URL('../../shared/telemetry-preload.ts', import.meta.url).href;

/**
 * Starts `services/<service>/main.ts` as a child (`node --import tsx --import
 * shared/telemetry-preload.ts`, as `npm run start:<x>`),
 * forwards its log lines with a `[name]` tag when `echo`, and resolves once it logged
 * `"msg":"listening"` with its port. When it exits first or does not start in time, rejects
 * with the reason and its last log lines (formatStartFailure).
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
  const closed = once(proc, 'close').then(() => undefined);
  const tail = new LogTail(20);
  let listening: ((port: number) => void) | undefined;
  const onLines = (stream: NodeJS.ReadableStream, inspect: boolean) => {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        tail.push(line);
        options.echo?.(`[${name}] ${line}`);
        if (inspect && line.includes('"msg":"listening"'))
          listening?.((JSON.parse(line) as { port: number }).port);
      }
    });
    stream.on('end', () => {
      if (buffered) tail.push(buffered);
    });
  };
  onLines(proc.stdout, true);
  onLines(proc.stderr, false);
  const port = await new Promise<number>((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 30000;
    const timer = setTimeout(() => {
      proc.kill('SIGKILL'); // never leave a half-started service behind
      reject(new Error(formatStartFailure(name, `did not start within ${timeoutMs} ms`, tail.lines())));
    }, timeoutMs);
    listening = (p) => {
      clearTimeout(timer);
      resolve(p);
    };
    // 'close' comes after 'exit' and after the pipes are drained: the tail has the last lines
    void closed.then(() => {
      clearTimeout(timer);
      const how = proc.exitCode !== null ? `code ${proc.exitCode}` : `signal ${proc.signalCode}`;
      reject(new Error(formatStartFailure(name, `exited with ${how} before it was ready`, tail.lines())));
    });
  });
  return { name, proc, port, pid: proc.pid!, exited, closed, lastLines: () => tail.lines() };
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
