import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import type { Request, Response } from 'express';
import { createServiceApp, finishServiceApp } from '../../shared/express-app.ts';
import { SwitchboardError, toSwitchboardError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { AssignmentFeed } from './assignment-feed.ts';
import type { GatewayMetrics } from './gateway-metrics.ts';
import { readJsonBody, sendError, sendJson } from '../../shared/http-body.ts';
import type { InflightLimiter } from './load-shedding.ts';
import { decodeRouteParam, guardRouteParams, routeParam } from '../../shared/route-params.ts';
import { tokenFrom, type NodeAuthenticator } from './node-auth.ts';
import type { NodeService } from './node-service.ts';
import { recordRegistrationFailure } from './registration-refusals.ts';

export interface HttpApiDeps {
  service: NodeService;
  feed: AssignmentFeed;
  auth: NodeAuthenticator;
  inflight: InflightLimiter;
  metrics: GatewayMetrics;
  maxMessageBytes: number;
  isClosing: () => boolean;
  log: Logger;
}

const HEARTBEAT_PATH = /^\/v1\/nodes\/([^/?]+)\/heartbeat(?:\?.*)?$/;

/**
 * The gateway's HTTP side. Heartbeats, the hot path, are served straight from node:http
 * (express costs ~3x per request); everything else goes through express.
 */
export function createHttpHandler(deps: HttpApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const app = createExpressApp(deps);
  return (req, res) => {
    const match = req.method === 'POST' ? HEARTBEAT_PATH.exec(req.url ?? '') : null;
    if (match) void handleHeartbeat(deps, match[1]!, req, res);
    else app(req, res);
  };
}

async function handleHeartbeat(
  deps: HttpApiDeps,
  rawNodeId: string,
  req: IncomingMessage,
  res: ServerResponse,
) {
  const started = performance.now();
  let outcome = 'applied';
  try {
    if (deps.isClosing()) throw new SwitchboardError('SHUTTING_DOWN');
    const principal = await deps.auth.authenticate(tokenFrom(req.headers.authorization, req.url));
    const nodeId = decodeRouteParam('node_id', rawNodeId);
    const body = await readJsonBody(req, deps.maxMessageBytes, deps.log);
    if (typeof body === 'object' && body !== null && !('node_id' in body))
      (body as { node_id: string }).node_id = nodeId;
    if (!deps.inflight.tryAcquire()) {
      deps.metrics.rejected.inc({ reason: 'inflight' });
      throw new SwitchboardError('RATE_LIMITED', 'gateway at capacity; retry shortly');
    }
    try {
      outcome = (await deps.service.heartbeat(body, principal, nodeId)).kind;
    } finally {
      deps.inflight.release();
    }
    // pending assignments ride on the heartbeat response until the node acks them
    const assignments = (await deps.feed.pending(nodeId)).map((frame) => JSON.parse(frame) as unknown);
    sendJson(res, 200, { ok: true, assignments });
  } catch (err) {
    const error = toSwitchboardError(err);
    outcome = error.code;
    if (error.code === 'INTERNAL') deps.log.error({ err }, 'heartbeat failed');
    req.resume(); // an unread body (a bad URL) must not hold the connection
    sendError(res, error);
  } finally {
    deps.metrics.countHeartbeat(outcome);
    deps.metrics.heartbeatSeconds.record((performance.now() - started) / 1000);
  }
}

function createExpressApp(deps: HttpApiDeps): express.Express {
  const app = createServiceApp();
  app.use(guardRouteParams(['/v1/nodes/:node_id/jobs/:job_id/:step']));

  app.post('/v1/nodes/register', async (req: Request, res: Response) => {
    if (deps.isClosing()) throw new SwitchboardError('SHUTTING_DOWN');
    const principal = await deps.auth.authenticate(tokenFrom(req.headers.authorization, req.url));
    const body = await readJsonBody(req, deps.maxMessageBytes, deps.log);
    if (!deps.inflight.tryAcquire())
      throw new SwitchboardError('RATE_LIMITED', 'gateway at capacity; retry shortly');
    try {
      const { ack } = await deps.service.register(body, principal, 'http').catch((err: unknown) => {
        const error = toSwitchboardError(err);
        recordRegistrationFailure(deps.metrics, deps.log, error, body, req.socket.remoteAddress ?? '');
        throw error;
      });
      const { type: _type, ...httpAck } = ack;
      deps.metrics.registrations.inc({ outcome: 'ok' });
      sendJson(res, 201, httpAck);
    } finally {
      deps.inflight.release();
    }
  });

  app.post('/v1/nodes/:node_id/jobs/:job_id/:step', async (req: Request, res: Response) => {
    const step = routeParam(req, 'step');
    const type = ({ ack: 'job_ack', started: 'job_started', result: 'job_result' } as const)[step];
    if (!type) throw new SwitchboardError('NOT_FOUND', `no route POST ${req.path}`);
    if (deps.isClosing()) throw new SwitchboardError('SHUTTING_DOWN');
    const principal = await deps.auth.authenticate(tokenFrom(req.headers.authorization, req.url));
    const body = await readJsonBody(req, deps.maxMessageBytes, deps.log);
    const nodeId = routeParam(req, 'node_id');
    if (typeof body === 'object' && body !== null && !('node_id' in body))
      (body as { node_id: string }).node_id = nodeId;
    const outcome = await deps.service.jobFrame(type, body, principal, nodeId, routeParam(req, 'job_id'));
    if (outcome === 'stale')
      throw new SwitchboardError('STALE_ATTEMPT', "this attempt is not the job's current one on this node");
    sendJson(res, 200, { ok: true, duplicate: outcome === 'duplicate' });
  });

  return finishServiceApp(app, deps.log);
}
