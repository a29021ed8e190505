/**
 * Preload of every service: `node --import tsx --import ./shared/telemetry-preload.ts
 * services/<name>/main.ts`. With tracing configured (shared/telemetry.ts) it registers the
 * instrumentation ESM hook and starts the SDK before the app's first import — ESM modules
 * (ioredis, express) are only instrumented when they load after both. Otherwise it does nothing.
 */
import { register } from 'node:module';
import { INSTRUMENTED_MODULES, serviceNameOf, startTelemetry, telemetryConfigured } from './telemetry.ts';

if (telemetryConfigured()) {
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, {
    data: { include: INSTRUMENTED_MODULES },
  });
  await startTelemetry(serviceNameOf(process.argv[1]));
}
