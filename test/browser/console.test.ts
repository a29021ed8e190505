import { mkdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { buildConsole, chromiumAvailable, launchChromium, SCREENSHOTS } from '../support/browser.ts';
import { TestFleet } from '../support/fleet.ts';
import { frame, FR_DE_NODE } from '../support/node-fixtures.ts';
import { uniquePrefix, waitFor } from '../support/redis.ts';
import { ADMIN_API_KEY, type TestSelector } from '../support/service-harness.ts';
import { TestStack } from '../support/test-stack.ts';

const VIEWER_KEY = 'acme-console-key-1';
const ZH = ['web-a', 'web-b', 'web-hot'];
const FR = ['web-fr'];

/**
 * Issue 14: the console in a real browser (Debian's chromium through playwright-core) against
 * a real Redis, gateway, worker and selector with simulated nodes on real WebSockets. Screenshots
 * go to test-results/console/.
 */
describe.skipIf(!chromiumAvailable())('console in a browser', () => {
  const prefix = uniquePrefix();
  let consoleDir: string;
  let stack: TestStack | undefined;
  let selector: TestSelector;
  let fleet: TestFleet;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    consoleDir = await buildConsole();
    stack = await TestStack.start(prefix, {
      selectorEnv: {
        SB_API_KEYS: `acme:${VIEWER_KEY}`,
        SB_CONSOLE_DIR: consoleDir,
        SB_QUARANTINE_FAULTS: '0',
      },
    });
    ({ selector } = stack);
    fleet = stack.track(await TestFleet.connect(stack.gw.ws, ZH, { max_concurrent_jobs: 4 }));
    fleet.adopt(await TestFleet.connect(stack.gw.ws, FR, FR_DE_NODE));
    fleet.ids.forEach((id, i) =>
      fleet.heartbeat(
        i,
        1,
        id === 'web-hot' ? { cpu_percent: 95 } : {},
        id === 'web-fr' ? { language_capabilities: undefined } : {},
      ),
    );
    await stack.waitReady(fleet.ids);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    if (consoleDir) rmSync(consoleDir, { recursive: true, force: true });
  });

  async function signIn(key: string): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${selector.url}/console/`);
    await page.locator('#login input[name="key"]').fill(key);
    await page.locator('#login button[type="submit"]').click();
    await page.locator('#nav').waitFor({ state: 'visible' });
    return page;
  }
  const textOf = (page: Page, selector: string) => page.locator(selector).first().innerText();
  /** Waits until the element's text contains `text` (the console refreshes every 2 s). */
  const waitText = (page: Page, selector: string, text: string) =>
    page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: 15_000 });
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
  const submit = async (body: Record<string, unknown> = {}) => {
    const res = await selector.api('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({ src_lang: 'zh', tgt_lang: 'en', ...body }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { job_id: string; node_id: string };
  };

  it('a wrong key is refused; a client key signs in read-only and sees the fleet live', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${selector.url}/console/`);
    await page.locator('#login input[name="key"]').fill('not-a-valid-key');
    await page.locator('#login button[type="submit"]').click();
    await waitText(page, '#login-error', 'not a valid API key');
    await page.context().close();

    const viewer = await signIn(VIEWER_KEY);
    expect(await textOf(viewer, '#who')).toContain('viewer');
    await waitText(viewer, '[data-stat="status-ready"] .stat-value', '4');
    await waitText(viewer, 'tr[data-id="zh:en"]', 'zh:en');
    expect(await viewer.locator('#queues-link').isVisible()).toBe(false);
    // the fleet updates without a reload: a job makes the used slots move
    const before = await textOf(viewer, '.load p');
    const job = await submit();
    // a reservation alone no longer republishes its node (issue 12): the node's next heartbeat
    // reporting the job running does (a significant change)
    fleet.heartbeat(fleet.ids.indexOf(job.node_id), Date.now(), { running_jobs: 1 });
    await waitFor(async () => (await textOf(viewer, '.load p')) !== before, { timeoutMs: 15_000 });
    await shot(viewer, 'viewer-fleet');
    // no drain for a viewer
    await viewer.goto(`${selector.url}/console/#/nodes/web-a`);
    await waitText(viewer, '[data-fact="status"]', 'ready');
    expect(await viewer.locator('#drain').count()).toBe(0);
    // finish the job, so that the slot is free again
    const socket = fleet.sockets[fleet.ids.indexOf(job.node_id)]!;
    const assign = await socket.next((f) => f.type === 'job_assign' && f['job_id'] === job.job_id);
    const ids = { job_id: job.job_id, attempt_id: assign['attempt_id'], node_id: job.node_id };
    socket.send(frame('job_ack', ids));
    socket.send(frame('job_result', { ...ids, success: true, text_asr: '你好', text_translated: 'hello' }));
    await viewer.context().close();
  });

  it('an admin drains a node with confirmation, and a new job’s breakdown shows it draining', async () => {
    const page = await signIn(ADMIN_API_KEY);
    await waitText(page, '[data-stat="status-ready"] .stat-value', '4');
    await page.locator('a[data-view="nodes"]').click();
    await page.locator('#nodes input[type="search"]').fill('web-');
    await waitText(page, '#nodes tbody', 'web-hot');
    await page.locator('#nodes input[type="search"]').fill('web-a');
    await waitFor(async () => (await page.locator('#nodes tbody tr').count()) === 1);
    await page.locator('#nodes tr[data-id="web-a"]').click();
    await waitText(page, '[data-fact="status"]', 'ready');
    await page.locator('#drain').click();
    await waitText(page, '.confirm', 'Stop giving web-a new jobs?');
    await shot(page, 'drain-confirm');
    await page.locator('#confirm-drain').click();
    await waitText(page, '#node [role="status"]', 'drained web-a');
    await waitText(page, '[data-fact="status"]', 'draining');
    // the node's history: registered, ready on its first heartbeat, then the drain and who did it
    await waitText(page, '#history tbody tr:first-child', 'drained by admin');
    expect(await page.locator('#history').textContent()).toMatch(
      /drained by admin[\s\S]*heartbeat[\s\S]*registered/,
    );
    await shot(page, 'node-history');
    await waitFor(async () => {
      const node = (await (await selector.api('/v1/nodes/web-a')).json()) as { draining: boolean };
      return node.draining;
    });

    const job = await submit();
    expect(job.node_id).toBe('web-b');
    await page.goto(`${selector.url}/console/#/jobs/${job.job_id}`);
    await waitText(page, '#job tr[data-id="draining"]', 'web-a');
    await waitText(page, '#job tr[data-id="resource_threshold_exceeded"]', 'web-hot');
    await shot(page, 'job-breakdown');
    await page.context().close();
  });

  it('opens a failed job and its why-not answer; bull-board shows the queues', async () => {
    const job = await submit({ exclude_node_ids: [] });
    const socket = fleet.sockets[fleet.ids.indexOf(job.node_id)]!;
    const assign = await socket.next((f) => f.type === 'job_assign' && f['job_id'] === job.job_id);
    const ids = { job_id: job.job_id, attempt_id: assign['attempt_id'], node_id: job.node_id };
    socket.send(frame('job_ack', ids));
    socket.send(
      frame('job_result', {
        ...ids,
        success: false,
        error: { code: 'MODEL_CRASHED', message: 'CUDA out of memory' },
      }),
    );

    const page = await signIn(ADMIN_API_KEY);
    await page.locator('a[data-view="jobs"]').click();
    await page.locator(`#failed-jobs tr[data-id="${job.job_id}"]`).click({ timeout: 15_000 });
    await waitText(page, '#job-error', 'MODEL_CRASHED: CUDA out of memory');
    await waitText(page, '#job [data-fact="status"]', 'failed');
    await page.locator('#why-form input[name="node_id"]').fill('web-a');
    await page.locator('#why-form button[type="submit"]').click();
    await waitText(page, '.why-node', 'draining');
    expect(await page.locator('.why-node').getAttribute('data-reason')).toBe('draining');
    await page.locator('#why-form input[name="node_id"]').fill('web-hot');
    await page.locator('#why-form button[type="submit"]').click();
    await page.locator('.why-node[data-reason="resource_threshold_exceeded"]').waitFor();
    const figures = await textOf(page, '.why-node .figures');
    expect(figures).toMatch(/threshold\s+85/);
    expect(figures).toMatch(/cpu_percent\s+95/);
    await waitText(page, '.explanation tr[data-id="asr_lang_unsupported"]', 'web-fr');
    await shot(page, 'why-not');

    await page.goto(`${selector.url}/console/queues/`);
    await page.getByText('snapshot-flush').first().waitFor({ timeout: 15_000 });
    await page.getByText('Loading...').first().waitFor({ state: 'hidden', timeout: 15_000 });
    await shot(page, 'queues');

    // undrain, from the node page
    await page.goto(`${selector.url}/console/#/nodes/web-a`);
    await waitText(page, '#drain', 'Undrain');
    await page.locator('#drain').click();
    await page.locator('#confirm-drain').click();
    await waitText(page, '#node [role="status"]', 'undrained web-a');
    await waitFor(
      async () => !((await (await selector.api('/v1/nodes/web-a')).json()) as { draining: boolean }).draining,
    );
    await page.context().close();
  });
});
