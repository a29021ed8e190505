import type express from 'express';
import type { Request, Response } from 'express';
import type { DerivedWorkQueues } from '../../shared/queues.ts';
import { routeParam } from '../../shared/route-params.ts';
import type { NodeAdminStore } from '../../shared/store/node-history.ts';
import { callerOf } from './api-keys.ts';

export interface CredentialRoutesDeps {
  nodes: NodeAdminStore;
  queues: DerivedWorkQueues;
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
    const { generation, known, dirtyWasEmpty, shard } = await deps.nodes.revoke(
      id,
      claim,
      callerOf(res)?.tenant,
    );
    if (dirtyWasEmpty) await deps.queues.requestFlush(shard);
    res.json({
      node_id: id,
      token_generation: generation,
      known,
      join_may_register: claim === 'open',
    });
  };
  app.post('/v1/nodes/:id/revoke', revoke('blocked'));
  app.post('/v1/nodes/:id/reset', revoke('open'));
}
