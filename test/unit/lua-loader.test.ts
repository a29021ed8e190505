import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadLuaScripts, LUA_DIR } from '../../shared/lua-scripts.ts';

describe('Lua loader', () => {
  const scripts = loadLuaScripts();

  it('reads the key count from the file name', () => {
    expect(Object.fromEntries(scripts.map((s) => [s.name, s.numberOfKeys]))).toMatchObject({
      registerNode: 6,
      recordHeartbeat: 7,
      markOffline: 4,
      recordNodeError: 1,
      takeDirty: 2,
      removeNode: 5,
    });
    expect(scripts.find((s) => s.name === 'applyPoolIndex')).toBeUndefined(); // gone with the pool sets (issue 13)
    expect(scripts.find((s) => s.name === 'publishSnapshot')?.numberOfKeys).toBeUndefined();
  });

  it('every script opens with a contract naming each of its KEYS', () => {
    for (const s of scripts) {
      const header = s.lua.slice(0, s.lua.indexOf(']]'));
      for (let i = 1; i <= (s.numberOfKeys ?? 3); i++)
        expect(header, `${s.name} KEYS[${i}]`).toContain(`KEYS[${i}]`);
    }
  });

  it('every script is typed on the ioredis commander', () => {
    const typed = readFileSync(new URL('../../shared/lua-scripts.ts', import.meta.url), 'utf8');
    for (const s of scripts) expect(typed, s.name).toMatch(new RegExp(`\\n\\s+${s.name}\\(`));
    expect(LUA_DIR.endsWith('/lua/')).toBe(true);
  });
});
