import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchService, stopService, type LaunchedService } from '../../scripts/lib/service-launcher.ts';
import { TestFleet } from '../support/fleet.ts';
import { frame } from '../support/node-fixtures.ts';
import { ADMIN_API_KEY, API_KEY, JOIN_TOKEN, NODE_TOKEN_SECRET } from '../support/service-harness.ts';
import { redisUrl, uniquePrefix, waitFor } from '../support/redis.ts';
import type { Frame } from '../support/ws-client.ts';

interface ReceivedSpan {
  service: string;
  resource: Record<string, unknown>;
  scope: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, unknown>;
}

interface OtlpValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: {
      scope?: { name?: string };
      spans?: {
        name: string;
        kind?: number;
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        attributes?: OtlpAttribute[];
      }[];
    }[];
  }[];
}

function attributesOf(list: OtlpAttribute[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list) {
    out[key] =
      value.stringValue ??
      value.boolValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.doubleValue;
  }
  return out;
}

/** A minimal OTLP/HTTP collector: POST /v1/traces with the JSON encoding, spans kept in order. */
async function startOtlpReceiver(): Promise<{ server: Server; url: string; spans: ReceivedSpan[] }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const payload = JSON.parse(body.toString('utf8')) as OtlpExport;
      for (const rs of payload.resourceSpans ?? []) {
        const resource = attributesOf(rs.resource?.attributes);
        const service = String(resource['service.name']);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              service,
              resource,
              scope: ss.scope?.name ?? '',
              name: s.name,
              kind: s.kind ?? 0,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              attributes: attributesOf(s.attributes),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}`, spans };
}

const [INTERNAL, CONSUMER] = [1, 5]; // OTLP SpanKind
/** The placement span and its steps, in order. */
const STEPS = ['job.place', 'job.choose', 'job.claim', 'job.reserve'];

describe('tracing: one job as one trace across selector and gateway (OTLP/HTTP)', () => {
  const prefix = uniquePrefix('tracing');
  const nodeId = 'trace-node-1';
  const clientTraceId = randomBytes(16).toString('hex');
  const clientSpanId = randomBytes(8).toString('hex');
  /** A second job, whose node echoes `trace_id` only (as every lingua node does). */
  const lingoTraceId = randomBytes(16).toString('hex');
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let gateway: LaunchedService;
  let worker: LaunchedService;
  let selector: LaunchedService;
  let fleet: TestFleet;
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${selector.port}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${ADMIN_API_KEY}`,
        'content-type': 'application/json',
        ...(init.headers ?? {}),
      },
    });

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    const env = (bspDelayMs: number) => ({
      REDIS_URL: redisUrl(),
      SB_PREFIX: prefix,
      PORT: '0',
      HOST: '127.0.0.1',
      SB_JOIN_TOKEN: JOIN_TOKEN,
      SB_NODE_TOKEN_SECRET: NODE_TOKEN_SECRET,
      SB_API_KEY: API_KEY,
      SB_ADMIN_API_KEYS: ADMIN_API_KEY,
      SB_FLUSH_DELAY_MS: '0',
      LOG_LEVEL: 'warn',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: String(bspDelayMs),
      OTEL_SERVICE_NAME: '',
    });
    [gateway, worker, selector] = await Promise.all([
      // the gateway's spans arrive only through the flush on SIGTERM (the batch delay is 10 min)
      launchService('gateway', 'services/gateway/main.ts', env(600_000)),
      launchService('worker', 'services/worker/main.ts', env(100)),
      launchService('selector', 'services/selector/main.ts', env(100)),
    ]);
    fleet = await TestFleet.connect(`ws://127.0.0.1:${gateway.port}/ws/node`, [nodeId]);
    fleet.heartbeat(0, 1);
    await waitFor(async () => ((await (await api('/v1/snapshot')).json()) as { nodes: number }).nodes === 1, {
      timeoutMs: 10_000,
    });
  });
  afterAll(async () => {
    await fleet?.close();
    await Promise.all([gateway, worker, selector].filter(Boolean).map((s) => stopService(s)));
    await new Promise((resolve) => receiver?.server.close(resolve));
  });

  it('carries the client traceparent through selection, job_assign, ack and result; spans carry the placement attributes', async () => {
    const socket = fleet.sockets[0]!;
    const placed = await api('/v1/jobs', {
      method: 'POST',
      headers: { traceparent: `00-${clientTraceId}-${clientSpanId}-01` },
      body: JSON.stringify({ job_id: 'trace-job-1', src_lang: 'zh', tgt_lang: 'en' }),
    });
    expect(placed.status).toBe(201);
    const placement = (await placed.json()) as { snapshot: { version: number } };

    const assign: Frame = await socket.nextOfType('job_assign');
    expect(assign['trace_id']).toBe(clientTraceId);
    const traceparent = String(assign['traceparent']);
    expect(traceparent).toMatch(new RegExp(`^00-${clientTraceId}-[\\da-f]{16}-01$`));
    const echo = {
      job_id: 'trace-job-1',
      attempt_id: 1,
      node_id: nodeId,
      trace_id: clientTraceId,
      traceparent,
    };
    socket.send(frame('job_ack', echo));
    socket.send(frame('job_result', { ...echo, success: true, text_translated: 'hello' }));
    await waitFor(
      async () =>
        ((await (await api('/v1/jobs/trace-job-1')).json()) as { status: string }).status === 'finished',
    );

    // the second job: ack and result echo trace_id alone
    const second = await api('/v1/jobs', {
      method: 'POST',
      headers: { traceparent: `00-${lingoTraceId}-${randomBytes(8).toString('hex')}-01` },
      body: JSON.stringify({ job_id: 'trace-job-2', src_lang: 'zh', tgt_lang: 'en' }),
    });
    expect(second.status).toBe(201);
    expect((await socket.nextOfType('job_assign'))['trace_id']).toBe(lingoTraceId);
    const bare = { job_id: 'trace-job-2', attempt_id: 1, node_id: nodeId, trace_id: lingoTraceId };
    socket.send(frame('job_ack', bare));
    socket.send(frame('job_result', { ...bare, success: true, text_translated: 'hi' }));
    await waitFor(
      async () =>
        ((await (await api('/v1/jobs/trace-job-2')).json()) as { status: string }).status === 'finished',
    );

    const inTrace = () => receiver.spans.filter((s) => s.traceId === clientTraceId);
    const one = (name: string) => {
      const found = inTrace().filter((s) => s.name === name);
      expect(found, name).toHaveLength(1);
      return found[0]!;
    };
    // the selector exports every 100 ms
    await waitFor(() => STEPS.every((n) => inTrace().some((s) => s.name === n)), {
      timeoutMs: 10_000,
    });
    const select = one('job.place');
    expect(select.service).toBe('switchboard-selector');
    expect(traceparent.split('-')[2]).toBe(select.spanId); // job_assign points at the placement span
    expect(select.attributes).toMatchObject({
      'sb.job_id': 'trace-job-1',
      'sb.pool': 'zh:en',
      'sb.node_id': nodeId,
      'sb.snapshot.version': placement.snapshot.version,
    });
    expect(select.attributes['sb.snapshot.age_ms']).toBeGreaterThanOrEqual(0);
    // one span per step, each a child of job.place: where the placement's time goes
    for (const step of STEPS.slice(1)) expect(one(step).parentSpanId, step).toBe(select.spanId);
    const choose = one('job.choose');
    expect(choose.attributes).toMatchObject({ 'sb.pool': 'zh:en', 'sb.candidates': 1, 'sb.eligible': 1 });
    expect(choose.attributes['sb.selection_us']).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(String(choose.attributes['sb.breakdown']))).toMatchObject({
      total_nodes: 1,
      eligible: 1,
    });
    expect(one('job.claim').attributes).toMatchObject({
      'sb.job_id': 'trace-job-1',
      'sb.outcome': 'claimed',
    });
    expect(select.kind).toBe(INTERNAL);

    // job.place → express handler → http server span → the client's span
    const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
    const chain: ReceivedSpan[] = [];
    for (let s = byId.get(select.parentSpanId); s; s = byId.get(s.parentSpanId)) chain.push(s);
    expect(chain.every((s) => s.service === 'switchboard-selector')).toBe(true);
    expect(chain.at(-1)).toMatchObject({
      scope: '@opentelemetry/instrumentation-http',
      kind: 2, // SERVER
      parentSpanId: clientSpanId,
    });
    expect(chain.some((s) => s.scope === '@opentelemetry/instrumentation-express')).toBe(true);

    const reserve = one('job.reserve');
    expect(reserve.attributes).toMatchObject({
      'sb.node_id': nodeId,
      'sb.attempt': 1,
      'sb.outcome': 'reserved',
    });
    // ioredis is instrumented through the ESM hook: the reservation script is a child span
    expect(
      inTrace().some(
        (s) => s.parentSpanId === reserve.spanId && s.scope === '@opentelemetry/instrumentation-ioredis',
      ),
    ).toBe(true);

    // the gateway's spans leave with the flush on shutdown
    expect(await stopService(gateway)).toBe(0);
    const ack = one('job.ack');
    const result = one('job.result');
    for (const span of [ack, result]) {
      expect(span.service).toBe('switchboard-gateway');
      expect(span.parentSpanId).toBe(select.spanId);
      expect(span.attributes).toMatchObject({
        'sb.job_id': 'trace-job-1',
        'sb.attempt': 1,
        'sb.node_id': nodeId,
        'sb.outcome': 'applied',
      });
    }
    expect(result.attributes['sb.success']).toBe(true);
    // where a request or a node message enters: SERVER (the HTTP span), CONSUMER (node frames)
    expect([ack.kind, result.kind]).toEqual([CONSUMER, CONSUMER]);
    // every service names its version on the resource
    for (const span of [select, ack]) expect(span.resource['service.version']).toMatch(/^\d+\.\d+\.\d+/);

    // trace_id alone: the gateway parents the spans under the placement span the job record keeps
    // the selector's batch of the second placement may leave after the gateway's flush (100 ms
    // schedule, later on a loaded machine): wait for it rather than race it
    await waitFor(() => receiver.spans.some((s) => s.traceId === lingoTraceId && s.name === 'job.place'), {
      timeoutMs: 10_000,
    });
    const lingo = receiver.spans.filter((s) => s.traceId === lingoTraceId);
    const lingoPlace = lingo.filter((s) => s.name === 'job.place');
    expect(lingoPlace).toHaveLength(1);
    for (const name of ['job.ack', 'job.result']) {
      const span = lingo.filter((s) => s.name === name);
      expect(span, name).toHaveLength(1);
      expect(span[0]!.parentSpanId, `${name} hangs under the placement`).toBe(lingoPlace[0]!.spanId);
    }
  });

  it('exports a heartbeat span per heartbeat write (gateway) and snapshot.flush spans (worker)', async () => {
    if (gateway.proc.exitCode === null) await stopService(gateway);
    const heartbeats = receiver.spans.filter((s) => s.name === 'heartbeat');
    expect(heartbeats.length).toBeGreaterThanOrEqual(1);
    expect(heartbeats[0]).toMatchObject({
      service: 'switchboard-gateway',
      attributes: { 'sb.node_id': nodeId, 'sb.outcome': 'applied', 'sb.status': 'ready' },
    });
    const flush = await waitFor(
      () =>
        receiver.spans.find((s) => s.name === 'snapshot.flush' && Number(s.attributes['sb.nodes']) > 0) ??
        false,
    );
    expect(flush.service).toBe('switchboard-worker');
    expect(flush.attributes['sb.shard']).toBeTypeOf('number');
    expect(flush.attributes['sb.version']).toBeGreaterThanOrEqual(1);
  });
});
