import { trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import {
  parseTraceparent,
  remoteParent,
  serviceNameOf,
  telemetryConfigured,
  tracingEnabled,
} from '../../shared/telemetry.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('telemetry helpers', () => {
  it('is on only with an OTLP endpoint, and never when disabled', () => {
    expect(telemetryConfigured({})).toBe(false);
    expect(telemetryConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318' })).toBe(true);
    expect(telemetryConfigured({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c/v1/traces' })).toBe(true);
    expect(
      telemetryConfigured({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318',
        OTEL_SDK_DISABLED: 'true',
      }),
    ).toBe(false);
    expect(
      telemetryConfigured({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318',
        OTEL_TRACES_EXPORTER: 'none',
      }),
    ).toBe(false);
    expect(tracingEnabled()).toBe(false); // nothing started it in this process
  });

  it('names a service after its entry point', () => {
    expect(serviceNameOf('/srv/services/gateway/main.ts')).toBe('switchboard-gateway');
    expect(serviceNameOf('dist/services/selector/main.js')).toBe('switchboard-selector');
    expect(serviceNameOf('scripts/start-local.ts')).toBe('switchboard');
    expect(serviceNameOf(undefined)).toBe('switchboard');
  });

  it('parses W3C traceparent headers and refuses malformed or all-zero ones', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      traceFlags: 1,
      isRemote: true,
    });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.traceFlags).toBe(0);
    for (const bad of [
      null,
      '',
      `00-${TRACE}-${SPAN}`,
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `ff-${TRACE}-${SPAN}-01`,
      `00-${TRACE}-${SPAN}-01-extra`,
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeNull();
    }
  });

  it('continues the job trace from an echoed traceparent, else from the trace id alone', () => {
    expect(trace.getSpanContext(remoteParent(`00-${TRACE}-${SPAN}-01`, null))).toMatchObject({
      traceId: TRACE,
      spanId: SPAN,
    });
    expect(trace.getSpanContext(remoteParent(undefined, TRACE))?.traceId).toBe(TRACE);
    expect(trace.getSpanContext(remoteParent('garbage', 'not-a-trace-id'))).toBeUndefined();
  });
});
