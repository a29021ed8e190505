import { readFileSync } from 'node:fs';
import { TestSocket, type Frame } from './ws-client.ts';

/**
 * The lingua node client's frames (test/fixtures/lingua/, recorded from TinoTau/lingua_1 at
 * its head; see the README there), and a node that replays them VERBATIM over a real socket:
 * it substitutes only what the client itself fills in at run time (node_id from the ack,
 * timestamp, and in asr_partial / job_result the ids it copies from job_assign). Like the
 * client it never sends job_ack, job_started or node_error, and it ignores error frames — it
 * records them, so a test can demand there were none.
 */

const FIXTURES = new URL('../fixtures/lingua/', import.meta.url);
const load = (name: string) =>
  JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as Record<string, unknown>;

export const clientFrames = load('client-frames.json') as {
  profiles: Record<'core' | 'full', Record<string, Frame>>;
  asr_partial: Frame;
  job_result_success: Frame;
  job_result_duplicate_job: Frame;
  job_result_duplicate_utterance: Frame;
  reconnect_first_frames: string[];
};
export const assignReads = load('job-assign-reads.json') as {
  required: Record<string, { type: string } | string>;
  optional_read: Record<string, { default: unknown } | string>;
};
export const schedulerE2e = load('scheduler-e2e-frames.json') as Record<string, Frame> & {
  node_id: string;
  session_utterance: Record<string, unknown>;
  job_assign_required: Record<string, unknown>;
};

export type LinguaProfile = 'core' | 'full';

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

export class LinguaReplayNode {
  nodeId: string | null = null;
  /** Every error frame the gateway sent (the real client would log "Unknown message type"). */
  readonly errors: Frame[] = [];
  /** Every job_assign received, in order. */
  readonly assigns: Frame[] = [];
  private constructor(
    private socket: TestSocket,
    private readonly url: string,
    private readonly token: string,
    readonly profile: LinguaProfile,
  ) {
    this.watch(socket);
  }

  static async connect(url: string, token: string, profile: LinguaProfile): Promise<LinguaReplayNode> {
    return new LinguaReplayNode(await TestSocket.open(url, token), url, token, profile);
  }

  private watch(socket: TestSocket): void {
    socket.ws.on('message', (data) => {
      const f = JSON.parse((data as Buffer).toString('utf8')) as Frame;
      if (f.type === 'error') this.errors.push(f);
      if (f.type === 'job_assign') this.assigns.push(f);
    });
  }

  /** The recorded node_register, with `node_id` (null the first time, as the client sends it). */
  async register(): Promise<string> {
    const reg = clone(clientFrames.profiles[this.profile]['node_register']!);
    reg['node_id'] = this.nodeId;
    this.socket.send(JSON.stringify(reg));
    const ack = await this.socket.nextOfType('node_register_ack', 10_000);
    this.nodeId = String(ack['node_id']);
    return this.nodeId;
  }

  /** The recorded node_heartbeat (`after_job`: the one with processing_metrics). */
  heartbeat(afterJob = false): void {
    const name = afterJob && this.profile === 'core' ? 'node_heartbeat_after_job' : 'node_heartbeat';
    const hb = clone(clientFrames.profiles[this.profile][name]!);
    hb['node_id'] = this.nodeId;
    hb['timestamp'] = Date.now();
    this.socket.send(JSON.stringify(hb));
  }

  /**
   * The client's reconnect (`reconnect_first_frames`): a new socket, a heartbeat with its old
   * node id, then node_register with it.
   */
  async reconnect(): Promise<void> {
    await this.socket.close();
    this.socket = await TestSocket.open(this.url, this.token);
    this.watch(this.socket);
    this.heartbeat();
    await this.register();
  }

  nextAssign(timeoutMs = 10_000): Promise<Frame> {
    return this.socket.nextOfType('job_assign', timeoutMs);
  }

  nextOfType(type: string, timeoutMs = 10_000): Promise<Frame> {
    return this.socket.nextOfType(type, timeoutMs);
  }

  /** The recorded asr_partial for `job`, with `text`. */
  partial(job: Frame, text: string, isFinal = false): void {
    const p = clone(clientFrames.asr_partial);
    Object.assign(p, this.ids(job), { text, is_final: isFinal });
    delete p['attempt_id'];
    this.socket.send(JSON.stringify(p));
  }

  /** The recorded successful job_result for `job`. */
  result(job: Frame): void {
    const r = clone(clientFrames.job_result_success);
    Object.assign(r, this.ids(job), { attempt_id: job['attempt_id'] });
    this.socket.send(JSON.stringify(r));
  }

  /** The recorded DUPLICATE_UTTERANCE_INDEX (or, `sameJob`, DUPLICATE_JOB_ID) failure for `job`. */
  duplicate(job: Frame, sameJob = false): void {
    const r = clone(
      sameJob ? clientFrames.job_result_duplicate_job : clientFrames.job_result_duplicate_utterance,
    );
    Object.assign(r, this.ids(job), { attempt_id: job['attempt_id'] });
    this.socket.send(JSON.stringify(r));
  }

  private ids(job: Frame): Record<string, unknown> {
    return {
      job_id: job['job_id'],
      node_id: this.nodeId,
      session_id: job['session_id'],
      utterance_index: job['utterance_index'],
      trace_id: job['trace_id'],
    };
  }

  close(): Promise<void> {
    return this.socket.close();
  }
}
