import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { QUEUE_FAILOVER, QUEUE_LIVENESS } from '../../shared/queues.ts';
import type { FaultRig } from './fault-rig.ts';

/**
 * The fault rig's failure reports: a job that did not settle, or a slot still held once idle,
 * explains itself with what Redis holds about it.
 */
export class FaultReport {
  constructor(private readonly rig: FaultRig) {}

  /**
   * Everything Redis holds about a job, for a failure to explain itself: the client's view, the
   * raw job record, and what the node shards hold for it (its reservation string, its members of
   * every shard's `:resv` and `:run`, its node's inbox entries and counters), each key with its
   * Cluster slot and whether the master killed by the test (`lostSlots`) served it.
   */
  async explain(jobId: string): Promise<string> {
    const lines: string[] = [];
    const slot = async (key: string) => {
      if (!(this.rig.inspect instanceof Cluster)) return '';
      const n = Number(await this.rig.inspect.cluster('KEYSLOT', key));
      const lost = this.rig.lostSlots && n >= this.rig.lostSlots[0] && n <= this.rig.lostSlots[1];
      return ` [slot ${n}${lost ? ', on the killed master' : ''}]`;
    };
    const selector = this.rig.services.selector[0];
    if (selector) {
      const res = await this.rig.api(selector, `/v1/jobs/${jobId}`).catch((e: Error) => e);
      lines.push(`view: ${res instanceof Error ? res.message : `${res.status} ${await res.text()}`}`);
    }
    const jobKey = this.rig.keys.job(jobId);
    const record = await this.rig.inspect.hgetall(jobKey);
    lines.push(`record ${jobKey}${await slot(jobKey)}: ${JSON.stringify(record)}`);
    for (let s = 0; s < this.rig.keys.shards; s++) {
      const k = this.rig.keys.shard(s);
      const [resv, run, held] = await Promise.all([
        this.rig.inspect.zrange(k.reservations, '0', '-1', 'WITHSCORES'),
        this.rig.inspect.zrange(k.running, '0', '-1', 'WITHSCORES'),
        this.rig.inspect.get(k.reservation(jobId)),
      ]);
      const mine = (rows: string[]) =>
        rows.flatMap((m, i) => (i % 2 === 0 && m.startsWith(`${jobId}|`) ? [`${m} → ${rows[i + 1]}`] : []));
      const found = [
        ...mine(resv).map((m) => `resv ${m}`),
        ...mine(run).map((m) => `run ${m}`),
        ...(held ? [`resv:${jobId} = ${held}`] : []),
      ];
      if (found.length) lines.push(`shard ${s}${await slot(k.tag)}: ${found.join('; ')}`);
    }
    const node = record['node_id'];
    if (node) {
      const k = this.rig.keys.forNode(node);
      const [inbox, counters] = await Promise.all([
        this.rig.inspect.xrange(k.inbox(node), '-', '+'),
        this.rig.inspect.hmget(k.node(node), 'status', 'reserved', 'committed', 'running'),
      ]);
      const entries = inbox.filter(([, f]) => f.join(' ').includes(`"${jobId}"`)).map(([id]) => id);
      lines.push(
        `node ${node} (shard ${k.shard}${await slot(k.tag)}): status/reserved/committed/running ${counters.join('/')}, inbox entries for the job: ${entries.join(',') || 'none'}`,
      );
    }
    return lines.map((l) => `  ${l}`).join('\n');
  }

  /**
   * Why slots are still held once idle: the jobs holding them (explain()), the liveness queue
   * (a tick that no longer runs times nothing out) and the worker's last log lines.
   */
  async explainHeld(): Promise<string> {
    const jobs = new Set<string>();
    for (let s = 0; s < this.rig.keys.shards; s++) {
      const k = this.rig.keys.shard(s);
      for (const m of [
        ...(await this.rig.inspect.zrange(k.reservations, '0', '-1')),
        ...(await this.rig.inspect.zrange(k.running, '0', '-1')),
      ])
        jobs.add(m.split('|')[0]!);
    }
    const explained = await Promise.all(
      [...jobs].slice(0, 5).map(async (id) => `${id}:\n${await this.explain(id).catch((e) => String(e))}`),
    );
    const ticks = await this.liveness();
    const worker = this.rig.services.worker.flatMap((w) => w.lastLines().slice(-20));
    return `${explained.join('\n')}\n${ticks}\nworker log tail:\n${worker.join('\n')}`;
  }

  /** The failover queue's jobs for these job ids (a failover asked for and not placed yet). */
  /**
   * Whether the liveness tick still runs: the liveness queue (jobs per state, its scheduler's
   * next run, the active and delayed tick jobs), the queue's Cluster slot, and the worker's own
   * sb_reaper_ticks_total read twice, a second apart.
   */
  async liveness(): Promise<string> {
    const liveness = new Queue(QUEUE_LIVENESS, {
      connection: this.rig.inspect,
      prefix: this.rig.keys.queuePrefix,
    });
    let ticks: string;
    try {
      const counts = await liveness.getJobCounts();
      const schedulers = await liveness.getJobSchedulers();
      const jobs = await liveness.getJobs(['active', 'failed', 'delayed', 'waiting']);
      const states = await Promise.all(
        jobs
          .slice(0, 8)
          .map(
            async (j) =>
              `${j.id} ${await j.getState()} ts ${j.timestamp} delay ${j.delay} processedOn ${j.processedOn ?? ''} ${j.failedReason ?? ''}`,
          ),
      );
      let slot = '';
      if (this.rig.inspect instanceof Cluster) {
        const n = Number(await this.rig.inspect.cluster('KEYSLOT', `${this.rig.keys.queuePrefix}:x`));
        const lost = this.rig.lostSlots && n >= this.rig.lostSlots[0] && n <= this.rig.lostSlots[1];
        slot = ` [slot ${n}${lost ? ', on the killed master' : ''}]`;
      }
      ticks = `liveness queue${slot} ${JSON.stringify(counts)}, schedulers ${JSON.stringify(schedulers.map((j) => [j.key, j.next]))}, now ${Date.now()}; jobs: ${states.join('; ')}`;
    } catch (err) {
      ticks = `liveness queue unreadable: ${String(err)}`;
    } finally {
      await liveness.close();
    }
    const first = await this.workerCounters();
    await new Promise((r) => setTimeout(r, 1000));
    return `${ticks}\nworker metrics: ${first}\n a second later: ${await this.workerCounters()}`;
  }

  /** The workers' liveness counters: ticks, stalls recovered, timeouts and sweeps by reason. */
  async workerCounters(): Promise<string> {
    const wanted = /^sb_(reaper_ticks_total|liveness_stalls_total|job_timeouts_total|jobs_swept_total)/;
    return JSON.stringify(
      await Promise.all(
        this.rig.services.worker.map(async (w) => {
          const text = await (await fetch(`http://127.0.0.1:${w.port}/metrics`)).text();
          return text
            .split('\n')
            .filter((l) => wanted.test(l))
            .map((l) => l.replace(/\{service="worker",?/, '{'))
            .join(' ');
        }),
      ).catch((e: unknown) => String(e)),
    );
  }

  async failoverQueue(jobIds: string[]): Promise<string> {
    const queue = new Queue(QUEUE_FAILOVER, {
      connection: this.rig.inspect,
      prefix: this.rig.keys.queuePrefix,
    });
    try {
      const counts = await queue.getJobCounts();
      const jobs = await queue.getJobs([
        'waiting',
        'active',
        'delayed',
        'failed',
        'completed',
        'prioritized',
      ]);
      const ours = jobs.filter((j) => jobIds.includes((j.data as { jobId?: string }).jobId ?? ''));
      const states = await Promise.all(
        ours.map(
          async (j) => `${j.id} ${JSON.stringify(j.data)} ${await j.getState()} ${j.failedReason ?? ''}`,
        ),
      );
      return `failover queue ${JSON.stringify(counts)}; for these jobs: ${states.join('; ') || 'none'}`;
    } catch (err) {
      return `failover queue unreadable: ${String(err)}`;
    } finally {
      await queue.close();
    }
  }
}
