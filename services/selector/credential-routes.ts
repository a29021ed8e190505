import type express from 'express';
import type { Request, Response } from 'express';
import { SwitchboardError } from '../../shared/errors.ts';
import { NODE_ID_PATTERN, type KeyBuilder } from '../../shared/keys.ts';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import type { RedisClient } from '../../shared/redis-client.ts';
import { routeParam } from '../../shared/route-params.ts';

export interface CredentialRoutesDeps {
  redis: RedisClient;
  keys: KeyBuilder;
  queues: DerivedWorkQueues;
  /** Cap of the assignment feed (SB_INBOX_LEN), for the control entry. */
  feedCap: number;
}

/**
 * Admin routes over a node's credentials (README "Credentials"):
 * - `POST /v1/nodes/:id/revoke`: every node token issued for the id stops verifying on every
 *   gateway, the node goes offline, its socket is closed, and the join token may not take the
 *   id back (until a reset).
 * - `POST /v1/nodes/:id/reset`: the same, and the next join-token registration of the id is
 *   accepted once (a reinstalled machine, a lost token, SB_JOIN_REREGISTER=refuse).
 */
export function mountCredentialRoutes(app: express.Express, deps: CredentialRoutesDeps): void {
  const revoke = (claim: 'blocked' | 'open') => async (req: Request, res: Response) => {
    const id = routeParam(req, 'id');
    if (!NODE_ID_PATTERN.test(id))
      throw new SwitchboardError('INVALID_MESSAGE', 'node id: expected 1-128 of [A-Za-z0-9._:-]');
    const k = deps.keys.forNode(id);
    const [generation, known, dirtyWasEmpty] = await deps.redis.revokeNode(
      k.node(id),
      k.tokens,
      k.assignments,
      k.live,
      k.offline,
      k.dirty,
      id,
      claim,
      Date.now(),
      deps.feedCap,
    );
    if (dirtyWasEmpty === 1) await deps.queues.requestFlush(k.shard);
    res.json({
      node_id: id,
      token_generation: generation,
      known: known === 1,
      join_may_register: claim === 'open',
    });
  };
  app.post('/v1/nodes/:id/revoke', revoke('blocked'));
  app.post('/v1/nodes/:id/reset', revoke('open'));
}
