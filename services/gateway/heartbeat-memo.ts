import type { HeartbeatScan } from '../../shared/protocol/heartbeat-scan.ts';
import { MAX_REST_MEMBERS, scanHeartbeat } from '../../shared/protocol/heartbeat-scan.ts';
import type { HeartbeatCapabilities } from './capability-cache.ts';

/**
 * One socket's memory of its node's last heartbeat that took the full path (JSON.parse, the zod
 * schema, the capability cache) and was accepted: the bytes of its members other than the core
 * ones (capabilities, metrics), and the capability parts they gave. A later frame of the same
 * node whose scan (shared/protocol/heartbeat-scan.ts) finds the same members byte for byte is a
 * heartbeat with the same, already validated, capabilities and needs neither JSON.parse nor
 * validation beyond the core fields the scan checked. ~0.7 KB per socket (the bench's frame).
 */
export class HeartbeatMemo {
  private nodeId = '';
  private rest: Buffer = Buffer.alloc(0);
  private readonly lengths = new Int32Array(MAX_REST_MEMBERS);
  private count = -1;
  /** The parts of the remembered heartbeat, marked as sent (`cached`): try without blobs. */
  caps: HeartbeatCapabilities | null = null;

  /**
   * True when `frame` scans as a heartbeat of `nodeId` (its id's bytes) whose other members are
   * the remembered ones, in the same order; `scan` then holds its core fields.
   */
  match(frame: Buffer, nodeId: string, scan: HeartbeatScan): boolean {
    if (this.count < 0 || nodeId !== this.nodeId) return false;
    if (!scanHeartbeat(frame, scan) || scan.restCount !== this.count) return false;
    const idLength = scan.nodeIdEnd - scan.nodeIdStart;
    if (idLength !== nodeId.length) return false;
    for (let k = 0; k < idLength; k++) if (frame[scan.nodeIdStart + k] !== nodeId.charCodeAt(k)) return false;
    let at = 0;
    for (let m = 0; m < this.count; m++) {
      const start = scan.restStart[m]!;
      const end = scan.restEnd[m]!;
      const length = this.lengths[m]!;
      if (end - start !== length || frame.compare(this.rest, at, at + length, start, end) !== 0) return false;
      at += length;
    }
    return true;
  }

  /**
   * Remembers `frame`, a heartbeat of `nodeId` the full path accepted with capabilities `caps`,
   * when it scans (else forgets: the next frame takes the full path too).
   */
  remember(frame: Buffer, nodeId: string, caps: HeartbeatCapabilities, scan: HeartbeatScan): void {
    if (!scanHeartbeat(frame, scan)) {
      this.forget();
      return;
    }
    let total = 0;
    for (let m = 0; m < scan.restCount; m++) total += scan.restEnd[m]! - scan.restStart[m]!;
    if (this.rest.length < total) this.rest = Buffer.allocUnsafeSlow(total);
    let at = 0;
    for (let m = 0; m < scan.restCount; m++) {
      at += frame.copy(this.rest, at, scan.restStart[m], scan.restEnd[m]);
      this.lengths[m] = scan.restEnd[m]! - scan.restStart[m]!;
    }
    this.count = scan.restCount;
    this.nodeId = nodeId;
    this.caps = caps.cached ? caps : { ...caps, cached: true };
  }

  forget(): void {
    this.count = -1;
    this.caps = null;
  }
}
