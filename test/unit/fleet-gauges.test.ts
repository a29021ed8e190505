import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { fleetFigures, POOL_SERIES_LIMIT } from '../../services/selector/fleet-gauges.ts';
import { createSelectorMetrics, setFleetGauges } from '../../services/selector/selector-metrics.ts';
import { fleet, node, withLang } from '../support/selection-fixtures.ts';

/** The selector's fleet gauges (README "Observing"), computed from a real SnapshotIndex. */

const NOW = 1_000_000;
const zhEn = {
  asr_languages: ['zh'],
  tts_languages: ['en'],
  semantic_languages: [],
  nmt_capabilities: [{ model_id: 'm', languages: ['zh', 'en'], rule: 'any_to_any' as const }],
};

describe('fleetFigures', () => {
  it('counts nodes by status, and draining/quarantined nodes that are not offline', () => {
    const f = fleetFigures(
      fleet(
        node('a'),
        node('b', { draining: true }),
        node('c', { quarantinedUntil: NOW + 1 }),
        node('d', { quarantinedUntil: NOW - 1 }), // over: ready again
        node('e', { status: 'degraded' }),
        node('f', { status: 'offline', draining: true }),
        node('g', { status: 'registering' }),
      ),
      NOW,
    );
    expect(f.nodes).toEqual({ registering: 1, ready: 4, degraded: 1, offline: 1 });
    expect(f.unavailable).toEqual({ draining: 1, quarantined: 1 });
  });

  it('slots: used on every node not offline, free only where selection may place', () => {
    const f = fleetFigures(
      fleet(
        node('a', { max: 4, running: 1, reserved: 1 }), // used 2, free 2
        node('b', { max: 4, running: 3, draining: true }), // used 3, free none (draining)
        node('c', { max: 2, running: 5 }), // over-full: used 2, free 0
        node('d', { max: 4, running: 4, status: 'offline' }), // not counted
        node('e', { max: 3, status: 'degraded' }), // used 0, free none
      ),
      NOW,
    );
    expect(f.slots).toEqual({ used: 7, free: 2 });
  });

  it('ready nodes per pool, a pool whose nodes are all unavailable at 0, fewest first', () => {
    const f = fleetFigures(
      fleet(
        node('a'),
        node('b'),
        withLang('c', zhEn, { status: 'offline' }),
        withLang('d', { ...zhEn, asr_languages: ['ja'], nmt_capabilities: [] }),
      ),
      NOW,
    );
    const pools = Object.fromEntries(f.poolReady);
    expect(pools['zh:en']).toBe(2);
    expect(pools['auto:en']).toBe(2);
    expect(f.poolReady[0]![1]).toBe(Math.min(...f.poolReady.map(([, n]) => n)));
    expect(f.pools.withoutReady).toBe(0);

    const drained = fleetFigures(fleet(node('a', { draining: true }), withLang('c', zhEn)), NOW);
    expect(Object.fromEntries(drained.poolReady)).toMatchObject({ 'zh:en': 1, 'en:zh': 0 });
    expect(drained.poolReady[0]).toEqual(['auto:zh', 0]); // zeros first, by name
    expect(drained.pools.withoutReady).toBeGreaterThan(0);
    expect(drained.pools.withReady + drained.pools.withoutReady).toBe(drained.poolReady.length);
  });

  it('bounds the pool series: at most the limit, the pools with fewest ready nodes', () => {
    const index = fleet(node('a'), node('b', { status: 'offline' }));
    const all = fleetFigures(index, NOW);
    const limited = fleetFigures(index, NOW, 2);
    expect(limited.poolReady).toEqual(all.poolReady.slice(0, 2));
    expect(limited.pools).toEqual(all.pools); // the counts still cover every pool
    expect(POOL_SERIES_LIMIT).toBeGreaterThan(0);
  });
});

describe('setFleetGauges', () => {
  it('exports the figures, and drops the series of a pool that is gone', async () => {
    const registry = new Registry();
    const metrics = createSelectorMetrics(registry);
    setFleetGauges(metrics, fleetFigures(fleet(node('a', { running: 1 }), withLang('c', zhEn)), NOW));
    let text = await registry.metrics();
    expect(text).toMatch(/^sb_nodes\{status="ready"\} 2$/m);
    expect(text).toMatch(/^sb_slots\{state="used"\} 1$/m);
    expect(text).toMatch(/^sb_pool_ready_nodes\{pool="en:zh"\} 1$/m);
    setFleetGauges(metrics, fleetFigures(fleet(withLang('c', zhEn)), NOW));
    text = await registry.metrics();
    expect(text).not.toMatch(/pool="en:zh"/);
    expect(text).toMatch(/^sb_pool_ready_nodes\{pool="zh:en"\} 1$/m);
  });
});
