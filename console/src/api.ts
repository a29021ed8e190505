/** The selector's JSON API, with the session cookie (sent by the browser) and the CSRF header. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    credentials: 'same-origin',
    headers: {
      accept: 'application/json',
      // required with the cookie on anything but a GET (PROTOCOL.md "Console")
      'x-sb-console': '1',
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? (JSON.parse(text) as unknown) : null;
  } catch {
    body = text;
  }
  if (!res.ok) {
    const message = (body as { error?: { message?: string } } | null)?.error?.message ?? `HTTP ${res.status}`;
    throw new ApiError(res.status, message, body);
  }
  return body as T;
}

export interface Session {
  role: 'admin' | 'viewer';
  tenant: string | null;
  auth: boolean;
}

export interface Histogram {
  count: number;
  /** [upper bound in seconds (null = +Inf), cumulative count] */
  buckets: [number | null, number][];
}

export interface SelectorFigures {
  jobs: Record<string, number>;
  reservation_conflicts: number;
  selection_seconds: Histogram;
  request_seconds: Histogram;
}

export interface Fleet {
  at: number;
  nodes: {
    total: number;
    by_status: Record<string, number>;
    draining: number;
    quarantined: number;
    slots: number;
    free: number;
  };
  pools: { pool: string; nodes: number; ready: number; slots: number; free: number }[];
  heartbeats: { window_ms: number; nodes_heard: number; per_s: number };
  snapshot: {
    nodes: number;
    shards: { shard: number; version: number; nodes: number; age_ms: number }[];
    lag_ms: { p50: number | null; p99: number | null };
  };
  /** the answering selector's cumulative figures */
  selector: SelectorFigures;
  /** every live selector's, each with its own clock `at` (this one's first) */
  selectors?: (SelectorFigures & { id: string; at: number })[];
  jaeger_url: string | null;
}

export interface NodeEntry {
  id: string;
  status: string;
  draining: boolean;
  hb: number;
  gpu: boolean;
  public: boolean;
  types: string[];
  features: string[];
  lang: Record<string, unknown>;
  pools: string[];
  max: number;
  running: number;
  reserved: number;
  cpu: number;
  gpuPct: number | null;
  mem: number;
  quarantinedUntil?: number;
  quarantineReason?: string;
  shard: number;
}

export interface NodeDetail extends NodeEntry {
  live: {
    status: string | null;
    draining: boolean;
    running: number;
    reserved: number;
    last_heartbeat_at: number | null;
    last_error: unknown;
    quarantine: {
      active: boolean;
      until: number | null;
      reason: string | null;
      level: number;
      faults: number;
    };
    /** status changes, newest first (the last 20-30) */
    history: { at: number; status: string; reason: string; by?: string }[];
  };
}

export interface JobSummary {
  job_id: string;
  status: string;
  node_id: string | null;
  attempt_id: number | null;
  created_at: number | null;
  finished_at: number | null;
  pair: string | null;
  error: { code?: string; message?: string } | null;
}

export interface Breakdown {
  total_nodes: number;
  candidates: number;
  eligible: number;
  rejected: Record<string, number>;
  samples: Record<string, string[]>;
}

export interface JobDetail {
  job: {
    job_id: string;
    status: string;
    node_id: string | null;
    attempt_id: number | null;
    attempts: { attempt_id: number; node_id: string; status: string; reason?: string }[];
    created_at: number;
    dispatched_at?: number;
    accepted_at?: number;
    started_at?: number;
    finished_at?: number;
    partials?: { text: string; is_final: boolean; at: number }[];
    result?: unknown;
    error?: { code: string; message: string };
  };
  request: Record<string, unknown> | null;
  placement: {
    pool: string;
    node_id: string;
    breakdown: Breakdown;
    selection_us: number;
    snapshot: unknown;
  } | null;
  trace_id: string | null;
  trace_url: string | null;
}

export interface Explanation {
  job_id: string | null;
  tried: string[];
  excluded_tried: boolean;
  pool: string;
  choice: string | null;
  chosen: string | null;
  ranked: string[];
  breakdown: Breakdown;
  message: string;
  by_reason: Record<string, { count: number; nodes: string[] }>;
  node: {
    node_id: string;
    known: boolean;
    reason: string | null;
    eligible: boolean;
    rank: number | null;
    text: string;
    figures: Record<string, unknown>;
  } | null;
}
