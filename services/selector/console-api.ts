import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type express from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { SwitchboardError } from '../../shared/errors.ts';
import { readJsonBody } from '../../shared/http-body.ts';
import type { KeyBuilder } from '../../shared/keys.ts';
import { NODE_ID_PATTERN } from '../../shared/keys.ts';
import { jobRequestSchema } from '../../shared/protocol/client-messages.ts';
import { parseOrThrow } from '../../shared/protocol/validation.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import { routeParam } from '../../shared/route-params.ts';
import { SelectorFiguresStore, type SelectorFigures } from '../../shared/store/selector-figures.ts';
import { parseTraceparent } from '../../shared/telemetry.ts';
import { callerOf, readableTenant } from './api-keys.ts';
import { explain } from './explain.ts';
import type { JobPlacer } from './job-placer.ts';
import { toSelection } from './job-selection.ts';
import type { JobReadStore } from '../../shared/store/job-reads.ts';
import type { SelectorMetrics } from './selector-metrics.ts';
import type { SnapshotIndex } from './snapshot-index.ts';

/**
 * The JSON the console reads beyond the job and node API (PROTOCOL.md "Console"): the fleet at
 * a glance, the job listings, a job in full, and "why not node X?" (POST /v1/explain).
 */

export interface ConsoleApiDeps {
  placer: JobPlacer;
  jobs: JobReadStore;
  index: SnapshotIndex;
  redis: RedisClient;
  keys: KeyBuilder;
  metrics: SelectorMetrics;
  snapshot: () => Record<string, unknown>;
  maxMessageBytes: number;
  /** SB_JAEGER_URL: the console links a job's trace there */
  jaegerUrl: string | null;
}

/** Heartbeats/s are the nodes heard within this window (each shard's `:live` zset) ÷ the window. */
const HEARTBEAT_WINDOW_MS = 5000;
/** How often a selector publishes its own figures for the other selectors' consoles. */
const FIGURES_EVERY_MS = 2000;
const LIST_LIMIT = 200;

const explainSchema = z
  .object({
    job_id: z.string().min(1).max(256).optional(),
    request: z.unknown().optional(),
    node_id: z.string().regex(NODE_ID_PATTERN, 'expected 1-128 of [A-Za-z0-9._:-]').nullish(),
    exclude_tried: z.boolean().optional(),
  })
  .refine((b) => (b.job_id === undefined) !== (b.request === undefined), {
    message: 'give exactly one of job_id and request',
  });

export function mountConsoleApi(app: express.Express, deps: ConsoleApiDeps): { close(): void } {
  // this selector's figures, for every console: published every 2 s, read with the others'
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const figures = new SelectorFiguresStore(deps.redis, deps.keys);
  const own = async (): Promise<SelectorFigures> => ({
    id,
    at: Date.now(),
    ...(await replicaMetrics(deps.metrics)),
  });
  const timer = setInterval(
    () =>
      void own()
        .then((f) => figures.publish(f))
        .catch(() => undefined),
    FIGURES_EVERY_MS,
  );
  timer.unref();

  app.get('/v1/console/fleet', async (_req: Request, res: Response) => {
    res.json(await fleet(deps, own, figures));
  });

  // recent or failed jobs, newest first (GET /v1/jobs?list=recent|failed&limit=)
  app.get('/v1/jobs', async (req: Request, res: Response) => {
    const list = req.query['list'] ?? 'recent';
    if (list !== 'recent' && list !== 'failed')
      throw new SwitchboardError('INVALID_MESSAGE', 'list: expected recent or failed');
    const limit = Number(req.query['limit'] ?? 50);
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT)
      throw new SwitchboardError('INVALID_MESSAGE', `limit: expected an integer 1-${LIST_LIMIT}`);
    res.json({ list, jobs: await deps.jobs.list(list, limit, readableTenant(callerOf(res))) });
  });

  app.get('/v1/console/jobs/:id', async (req: Request, res: Response) => {
    const id = routeParam(req, 'id');
    const tenant = readableTenant(callerOf(res));
    const view = await deps.jobs.view(id, tenant);
    if (!view) throw new SwitchboardError('NOT_FOUND', `no job ${id}`);
    const [placement, traceparent] = await deps.redis.hmget(deps.keys.job(id), 'placement', 'traceparent');
    const traceId = parseTraceparent(traceparent)?.traceId ?? null;
    res.json({
      job: view,
      request: await deps.jobs.request(id, tenant),
      placement: placement ? (JSON.parse(placement) as unknown) : null,
      trace_id: traceId,
      trace_url: traceId && deps.jaegerUrl ? `${deps.jaegerUrl.replace(/\/+$/, '')}/trace/${traceId}` : null,
    });
  });

  app.post('/v1/explain', async (req: Request, res: Response) => {
    const body = parseOrThrow(explainSchema, await readJsonBody(req, deps.maxMessageBytes));
    let request: unknown = body.request;
    let tried: string[] = [];
    if (body.job_id !== undefined) {
      const tenant = readableTenant(callerOf(res));
      request = await deps.jobs.request(body.job_id, tenant);
      if (request === null) throw new SwitchboardError('NOT_FOUND', `no job ${body.job_id}`);
      const view = await deps.jobs.view(body.job_id, tenant);
      tried = [...new Set((view?.attempts ?? []).map((a) => a.node_id).filter((n) => n !== ''))];
    }
    const job = parseOrThrow(jobRequestSchema, request);
    const selection = toSelection(job);
    if (body.exclude_tried === true)
      selection.excludeNodeIds = [...new Set([...selection.excludeNodeIds, ...tried])];
    const answer = explain(deps.index, selection, deps.placer.selectionPolicy(), body.node_id ?? null);
    res.json({
      job_id: body.job_id ?? null,
      tried,
      excluded_tried: body.exclude_tried === true,
      request: job,
      ...answer,
    });
  });
  return { close: () => clearInterval(timer) };
}

async function fleet(
  deps: ConsoleApiDeps,
  own: () => Promise<SelectorFigures>,
  figures: SelectorFiguresStore,
) {
  const now = Date.now();
  const byStatus: Record<string, number> = { ready: 0, registering: 0, degraded: 0, offline: 0 };
  let draining = 0;
  let quarantined = 0;
  let slots = 0;
  let free = 0;
  for (const { entry: e } of deps.index.all()) {
    byStatus[e.status] = (byStatus[e.status] ?? 0) + 1;
    if (e.draining) draining++;
    if ((e.quarantinedUntil ?? 0) > now) quarantined++;
    if (usable(e, now)) {
      slots += e.max;
      free += Math.max(0, e.max - e.running - e.reserved);
    }
  }
  const pools = [...deps.index.keys('pool')].sort().map((pool) => {
    let nodes = 0;
    let ready = 0;
    let poolSlots = 0;
    let poolFree = 0;
    for (const id of deps.index.index('pool', pool)) {
      const e = deps.index.get(id)?.entry;
      if (!e) continue;
      nodes++;
      if (!usable(e, now)) continue;
      ready++;
      poolSlots += e.max;
      poolFree += Math.max(0, e.max - e.running - e.reserved);
    }
    return { pool, nodes, ready, slots: poolSlots, free: poolFree };
  });
  const heard = await Promise.all(
    Array.from({ length: deps.keys.shards }, (_, shard) =>
      deps.redis.zcount(deps.keys.shard(shard).live, `(${now - HEARTBEAT_WINDOW_MS}`, '+inf'),
    ),
  );
  const heardTotal = heard.reduce((a, b) => a + b, 0);
  const self = await own();
  const others = (await figures.fresh(now).catch(() => [])).filter((f) => f.id !== self.id);
  const { id: _id, at: _at, ...selector } = self;
  return {
    at: now,
    nodes: { total: deps.index.size, by_status: byStatus, draining, quarantined, slots, free },
    pools,
    heartbeats: {
      window_ms: HEARTBEAT_WINDOW_MS,
      nodes_heard: heardTotal,
      per_s: heardTotal / (HEARTBEAT_WINDOW_MS / 1000),
    },
    snapshot: deps.snapshot(),
    // this replica's counters, cumulative: the console turns them into rates and windowed p99s
    selector,
    // every live selector's (this one's first), each with its own clock: fleet-wide figures
    selectors: [self, ...others],
    jaeger_url: deps.jaegerUrl,
  };
}

/** Ready, not drained, not quarantined: what selection could use. */
function usable(e: { status: string; draining: boolean; quarantinedUntil?: number }, now: number): boolean {
  return e.status === 'ready' && !e.draining && (e.quarantinedUntil ?? 0) <= now;
}

async function replicaMetrics(m: SelectorMetrics) {
  const jobs: Record<string, number> = {};
  for (const v of (await m.jobs.get()).values) jobs[String(v.labels['outcome'])] = v.value;
  const histogram = async (h: SelectorMetrics['selectionSeconds']) => {
    const buckets: [number, number][] = [];
    let count = 0;
    for (const v of (await h.get()).values) {
      if (v.metricName?.endsWith('_bucket')) {
        const le = v.labels['le'];
        buckets.push([le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), v.value]);
      } else if (v.metricName?.endsWith('_count')) count = v.value;
    }
    // JSON has no Infinity: the +Inf bucket's bound is sent as null
    const sent = buckets.map(([le, c]): [number | null, number] => [Number.isFinite(le) ? le : null, c]);
    return { count, buckets: sent };
  };
  return {
    jobs,
    reservation_conflicts: (await m.reservationConflicts.get()).values[0]?.value ?? 0,
    selection_seconds: await histogram(m.selectionSeconds),
    request_seconds: await histogram(m.requestSeconds),
  };
}
