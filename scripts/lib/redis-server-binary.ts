import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';

const INSTALL_HINT = [
  'Install Redis >= 7:',
  '  Debian/Ubuntu: sudo apt-get install -y redis-server',
  '  macOS:         brew install redis',
  'or set REDIS_SERVER_BIN=/path/to/redis-server,',
  'or point at an existing server instead of spawning one: REDIS_URL=redis://host:port',
  '(tests: TEST_REDIS_URL and TEST_REDIS_CLUSTER_NODES=host:port,host:port,...).',
].join('\n');

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Path to `redis-server`: `$REDIS_SERVER_BIN`, else the first one on PATH; throws with install instructions. */
export function redisServerBinary(): string {
  const fromEnv = process.env['REDIS_SERVER_BIN'];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new Error(`REDIS_SERVER_BIN=${fromEnv} is not an executable file.\n${INSTALL_HINT}`);
  }
  const exe = process.platform === 'win32' ? 'redis-server.exe' : 'redis-server';
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, exe);
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error(`redis-server was not found on PATH (and REDIS_SERVER_BIN is not set).\n${INSTALL_HINT}`);
}
