// Checks that package-lock.json is one `npm ci` accepts on any machine and registry, before
// anything is installed (.ci/run runs it first; test/unit/lockfile.test.ts runs it in `npm test`).
// Plain JavaScript without dependencies: it runs on any Node, with or without node_modules.
//
//   1. The lock's root entry says what package.json says (dependencies, devDependencies,
//      optionalDependencies, engines): otherwise npm ci refuses the lock.
//   2. Every exactly pinned dependency is locked at that version.
//   3. Every optional dependency of every locked package has an entry, for every platform:
//      a lock written over another platform's node_modules lacks them, and npm ci refuses it
//      (EUSAGE "Missing: @msgpackr-extract/... from lock file").
//   4. No entry names a registry URL (`resolved`): the lock installs from any registry.
//      Every registry entry carries its `integrity`.
//   5. Every locked package with an install script has a decision in package.json's
//      `allowScripts` (true: runs, false: never runs); .npmrc makes npm enforce it.
// Exit 1 with one line per problem. `node scripts/check-lockfile.mjs [dir]` checks another
// directory's package.json and lock (the tests use it).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const root = process.argv[2] ? pathToFileURL(`${process.argv[2]}/`) : new URL('../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8'));
const problems = [];
const packages = lock.packages ?? {};
const rootEntry = packages[''] ?? {};

const same = (a, b) => JSON.stringify(sorted(a ?? {})) === JSON.stringify(sorted(b ?? {}));
function sorted(o) {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

if (lock.lockfileVersion !== 3) problems.push(`lockfileVersion is ${lock.lockfileVersion}, expected 3`);
for (const field of ['dependencies', 'devDependencies', 'optionalDependencies', 'engines']) {
  if (!same(pkg[field], rootEntry[field]))
    problems.push(
      `package.json ${field} differ from the lock's: run \`rm -rf node_modules package-lock.json && npm install\` and commit the lock`,
    );
}

/** Where npm would find `name` for the package at `from` (node_modules resolution upwards). */
function resolve(from, name) {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!dir) return null;
    const at = dir.lastIndexOf('/node_modules/');
    dir = at < 0 ? '' : dir.slice(0, at);
  }
}

for (const field of ['dependencies', 'devDependencies', 'optionalDependencies']) {
  for (const [name, spec] of Object.entries(pkg[field] ?? {})) {
    if (!/^\d+\.\d+\.\d+$/.test(spec)) continue;
    const locked = packages[`node_modules/${name}`]?.version;
    if (locked !== spec)
      problems.push(`${name}: package.json pins ${spec}, the lock has ${locked ?? 'nothing'}`);
  }
}

for (const [path, entry] of Object.entries(packages)) {
  for (const name of Object.keys(entry.optionalDependencies ?? {})) {
    if (!resolve(path, name))
      problems.push(`${path || 'package.json'}: optional dependency ${name} has no lock entry`);
  }
  if (path === '' || entry.link) continue;
  if (entry.resolved) problems.push(`${path}: "resolved" names a registry (${entry.resolved}); see .npmrc`);
  if (!entry.integrity && !entry.inBundle) problems.push(`${path}: no "integrity"`);
  const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
  if (entry.hasInstallScript && !(name in (pkg.allowScripts ?? {})))
    problems.push(`${name}: has an install script and no allowScripts decision in package.json`);
}

if (problems.length > 0) {
  console.error(`package-lock.json is not one npm ci accepts everywhere:\n  - ${problems.join('\n  - ')}`);
  process.exit(1);
}
console.log(`package-lock.json: ${Object.keys(packages).length - 1} entries, agrees with package.json`);
