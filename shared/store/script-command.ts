import { Command } from 'ioredis';

/**
 * An EVALSHA for the hottest path (one per heartbeat), written as ONE prebuilt RESP buffer.
 *
 * Measured per call with bench/alloc.ts (V8 heap bytes, ioredis 6): a script defined with
 * `defineCommand` allocates ~10 KB (ioredis' Script wrapper copies the arguments twice, chains a
 * NOSCRIPT catch, and `toWritable` concatenates ~5 strings per argument into a rope that the
 * socket write flattens again), plus ~1.4 KB for `commandTimeout` (a timer per command whose
 * `delete` turns the command into a dictionary-mode object). This command is ~2.9 KB, as much
 * as a PING: its arguments are encoded once into a pooled Buffer, its Cluster slot is given
 * (the shard's hash tag), and its timeout is a deadline checked by one shared sweep
 * (`CommandDeadlines`) instead of a timer each.
 *
 * Callers handle `NOSCRIPT` (a Redis restarted or failed over since the script was loaded) by
 * sending the same call once through the defined command, which loads it with EVAL.
 */
export class PrebuiltCommand extends Command {
  /** performance.now() after which the sweep rejects it with "Command timed out". */
  deadline = Infinity;

  constructor(
    private readonly payload: Buffer,
    private readonly clusterSlot: number | null,
    private readonly deadlines: CommandDeadlines | null,
  ) {
    super('evalsha', [], { replyEncoding: 'utf8' });
  }

  override toWritable(): Buffer {
    return this.payload;
  }

  override getSlot(): number {
    // ioredis types it as number; null routes to any node (standalone: unused)
    return this.clusterSlot as number;
  }

  /** Called by ioredis with its `commandTimeout` (fail-fast clients). */
  override setTimeout(ms: number): void {
    if (this.deadlines) this.deadlines.track(this, ms);
    else super.setTimeout(ms);
  }
}

/**
 * Deadlines of in-flight PrebuiltCommands of one client, checked every quarter of the timeout
 * (at most every 250 ms): a command still unsettled past its deadline is rejected with the
 * error ioredis' own timer would give ("Command timed out": SCHEDULER_DEPENDENCY_DOWN). One
 * connection answers in order, so the oldest unsettled command is at the front.
 */
export class CommandDeadlines {
  private readonly queue: PrebuiltCommand[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private periodMs = 250;

  track(command: PrebuiltCommand, ms: number): void {
    command.deadline = performance.now() + ms;
    this.queue.push(command);
    const period = Math.max(1, Math.min(250, Math.floor(ms / 4)));
    if (!this.timer || period < this.periodMs) {
      clearInterval(this.timer);
      this.periodMs = period;
      this.timer = setInterval(() => this.sweep(), period);
      this.timer.unref();
    }
  }

  /** Drops settled commands from the front and rejects the overdue ones. */
  sweep(now = performance.now()): void {
    const q = this.queue;
    while (this.head < q.length) {
      const command = q[this.head]!;
      if (!command.isSettled) {
        if (command.deadline > now) break;
        command.reject(new Error('Command timed out'));
      }
      q[this.head++] = undefined as unknown as PrebuiltCommand;
    }
    // a later command may be overdue behind an earlier one that is not (timeouts may differ)
    for (let i = this.head; i < q.length; i++) {
      const command = q[i]!;
      if (!command.isSettled && command.deadline <= now) command.reject(new Error('Command timed out'));
    }
    if (this.head === q.length) {
      q.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > q.length) {
      q.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Commands tracked and not yet dropped (tests). */
  get pending(): number {
    return this.queue.length - this.head;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

const CRLF = 0x0d0a;
/** Decimal text of small non-negative integers, made once (lengths, percentages, codes). */
const SMALL_INTS = Array.from({ length: 1024 }, (_, i) => String(i));

/** As ioredis writes a number argument (its `toArg`): integers beyond 2^53 in full, not 1e+21. */
export function numberText(n: number): string {
  if (Number.isInteger(n)) {
    if (n >= 0 && n < SMALL_INTS.length) return SMALL_INTS[n]!;
    if (!Number.isSafeInteger(n)) return BigInt(n).toString();
  }
  return String(n);
}

/**
 * RESP encoding of `EVALSHA sha numKeys ...keysAndArgs` into one Buffer (from Node's pool when
 * small). Numbers are written as ioredis writes them.
 */
export function encodeEvalsha(
  sha: string,
  numKeys: number,
  keysAndArgs: readonly (string | number)[],
): Buffer {
  const count = keysAndArgs.length + 3;
  let size =
    1 + numberText(count).length + 2 + bulkSize('evalsha') + bulkSize(sha) + bulkSize(numberText(numKeys));
  for (let i = 0; i < keysAndArgs.length; i++) {
    const a = keysAndArgs[i]!;
    size += bulkSize(typeof a === 'number' ? numberText(a) : a);
  }
  const buf = Buffer.allocUnsafe(size);
  let at = buf.write('*', 0, 'latin1');
  at += buf.write(numberText(count), at, 'latin1');
  at = buf.writeUInt16BE(CRLF, at);
  at = writeBulk(buf, at, 'evalsha');
  at = writeBulk(buf, at, sha);
  at = writeBulk(buf, at, numberText(numKeys));
  for (let i = 0; i < keysAndArgs.length; i++) {
    const a = keysAndArgs[i]!;
    at = writeBulk(buf, at, typeof a === 'number' ? numberText(a) : a);
  }
  return buf;
}

function bulkSize(s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  return 1 + numberText(n).length + 2 + n + 2;
}

function writeBulk(buf: Buffer, at: number, s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  at += buf.write('$', at, 'latin1');
  at += buf.write(numberText(n), at, 'latin1');
  at = buf.writeUInt16BE(CRLF, at);
  at += buf.write(s, at, 'utf8');
  return buf.writeUInt16BE(CRLF, at);
}
