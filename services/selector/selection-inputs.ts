/** What a selection is asked: the job's request and the selector's policy. */

/** Already validated and normalised by the HTTP layer. */
export interface SelectionRequest {
  /** normalised, or 'auto' */
  srcLang: string;
  /** normalised */
  tgtLang: string;
  pipeline: { asr: boolean; nmt: boolean; tts: boolean; semantic: boolean; tone: boolean };
  /**
   * Further service types the pipeline needs ready, without a language check (`use_phonetic`,
   * `use_lexicon`, any other `use_<type>` flag set true), in request order.
   */
  extraTypes?: readonly string[];
  /** requested feature names (those set to true); unknown names throw UnknownFeatureError */
  features: string[];
  routingKey?: string | null;
  public: boolean;
  requireGpu: boolean;
  /** restricts the candidate sources of src 'auto'; null/absent/empty = no restriction */
  autoLangs?: string[] | null;
  preferredNodeId?: string | null;
  excludeNodeIds: string[];
}

export interface KnownLoad {
  running: number;
  reserved: number;
}

export interface SelectionPolicy {
  strategy: 'p2c' | 'least_loaded' | 'random';
  /** percent, default 85 */
  resourceThreshold: number;
  /** routing-key affinity on (default true) */
  affinity: boolean;
  /**
   * Live counters the selector knows beyond the snapshot (reservations it made, running jobs it
   * knows), by node id. Called once per language candidate that reaches the capacity check
   * (or per id of knownLoadIds): return a stored object, do not build one per call.
   */
  knownLoad?: (nodeId: string) => KnownLoad | undefined;
  /**
   * The ids knownLoad may know (e.g. its map's keys): when given, knownLoad is asked for those
   * only, instead of for every language candidate that reaches the capacity check — O(known)
   * instead of O(candidates) per selection.
   */
  knownLoadIds?: () => Iterable<string>;
  /**
   * knownLoad may know only the nodes marked in the index (SnapshotIndex.markKnown): it is
   * asked for the marked language candidates that reach the capacity check, found by bit set
   * — no id lookup per known node (knownLoadIds costs one Map lookup per id, ~60–300 ns at
   * 50,000 nodes). Takes precedence over knownLoadIds.
   */
  knownLoadMarked?: boolean;
  /** [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
}
