/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core), against a real scheduler,
 * worker and `airtasks web` (issue 18): trigger a run from the form generated from the DAG's params and
 * watch it turn green without a reload; open a failed task's log, clear it and see it run again; actions
 * refused without confirmation and from another site; each worker's GPUs and which task holds which; no
 * secret value in any page or API answer; the token. Screenshots of every page go to test-artifacts/web/ (look at them).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { recordDecision } from '../../src/engine/store/autoscaler-decisions.js';
import { Db } from '../../src/engine/store/db.js';
import { Daemon, E2eProject, ROOT, runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/engine.js';
import { DATABASE_URL, requireService } from '../helpers/env.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
const SHOTS = path.join(ROOT, 'test-artifacts', 'web');
const SECRET = 'web-S3cret-' + randomBytes(6).toString('hex');

const DAGS = {
  'web.ts': `
import { dag } from 'airtasks';

export const demo = dag<{ count: number }>('web_demo', {
  description: 'Two steps, one reading a secret.',
  params: { count: { type: 'integer', default: 2, minimum: 1, description: 'how many' } },
  defaults: { retries: 0 },
});
const first = demo.bash('first', { command: 'echo start; sleep 1; echo "count {{ conf.count }}"' });
demo.node('second', {
  upstream: first,
  run: async (ctx) => {
    const s = (await ctx.variable('web_secret'))!;
    ctx.log('the secret is', s);
    return { s, n: ctx.conf.count };
  },
});

export const fail = dag('web_fail', { defaults: { retries: 0 } });
const flaky = fail.bash('flaky', {
  command: 'test -f "$WEB_DIR/ok" || { echo "flaky failed on purpose"; exit 1; }; echo fixed now',
});
fail.bash('after', { upstream: flaky, command: 'echo after' });

// Holds one of the worker's two GPUs until the test lets it go.
export const gpu = dag('web_gpu', { defaults: { retries: 0 } });
gpu.bash('hold', { gpus: 1, command: 'while [ ! -f "$WEB_DIR/gpu-go" ]; do sleep 0.2; done; echo let go' });
`,
};

describe('e2e: the dashboard in a browser', function () {
  this.timeout(240_000);
  const p = new E2eProject();
  let dir: string;
  let web: Daemon;
  let url: string;
  let browser: Browser;
  let page: Page;

  const api = (pathname: string, init: RequestInit = {}) => fetch(new URL(pathname, url), init);
  const logShows = (text: string) =>
    page.waitForSelector(`[data-testid="task-log"]:has-text(${JSON.stringify(text)})`, { timeout: 30_000 });
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  before(async function () {
    await requireService(this, 'postgres');
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing (.ci/run installs Debian's chromium)`);
      this.skip();
    }
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-web-'));
    await mkdir(SHOTS, { recursive: true });
    await p.create(DAGS, { AIRTASKS_SECRET_KEY: randomBytes(32).toString('base64'), WEB_DIR: dir });
    for (const args of [
      ['variables', 'set', 'web_secret', SECRET, '--secret'],
      ['variables', 'set', 'web_plain', 'plain value'],
      ['pools', 'set', 'web_pool', '3'],
    ]) {
      const r = await runCli(args, p.env);
      if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    }
    // Two GPUs declared without nvidia-smi (ids, no model): the web_gpu task holds one of them.
    await p.startEngine(['--gpus', '0,1']);
    web = await p.start(['web', '--port', '0'], 'airtasks dashboard: ');
    url = /airtasks dashboard: (\S+)/.exec(web.output)![1]!;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await p.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('binds 127.0.0.1 and lists the DAGs', async () => {
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await page.goto(url);
    await page.waitForSelector('tr[data-dag="web_demo"]');
    await page.waitForSelector('tr[data-dag="web_fail"]');
    await shot('dags');
  });

  it('triggers a run from the form made from its params, and shows it turn green live', async () => {
    await page.click('[data-testid="trigger-web_demo"]');
    const count = page.locator('[data-testid="trigger-form"] input[name="count"]');
    expect(await count.inputValue()).to.equal('2');
    // An invalid value is refused as `trigger dag` refuses it.
    await count.fill('0');
    await page.click('[data-testid="trigger-submit"]');
    await page.waitForSelector('[data-testid="trigger-form"] .error');
    expect(await page.textContent('[data-testid="trigger-form"] .error')).to.match(/count/);
    await shot('trigger-form');
    await count.fill('5');
    await page.click('[data-testid="trigger-submit"]');
    await page.waitForURL(/#\/runs\//);
    // No reload: the same document (its marker kept) sees the run go on to success through the live stream.
    await page.evaluate('window.__sameDocument = true');
    await page.waitForSelector('h1 .badge[data-state="success"]', { timeout: 60_000 });
    expect(await page.evaluate('window.__sameDocument')).to.equal(true);
    await page.click('tr[data-task="first"] a');
    await logShows('count 5');
    await shot('run-success');
  });

  it('opens a failed task, reads its log, clears it and sees it run again', async () => {
    const r = await api('/api/v1/dags/web_fail/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ conf: {} }),
    });
    expect(r.status, await r.clone().text()).to.equal(200);
    const { runId } = (await r.json()) as { runId: string };
    await page.goto(`${url}#/runs/${encodeURIComponent(runId)}`);
    await page.waitForSelector('h1 .badge[data-state="failed"]', { timeout: 60_000 });
    await page.click('tr[data-task="flaky"] a');
    await logShows('flaky failed on purpose');
    await shot('run-failed');

    // Refused: no confirmation; another site; a browser POST without the CSRF token.
    const clear = `/api/v1/runs/${encodeURIComponent(runId)}/tasks/flaky/clear`;
    const json = { 'content-type': 'application/json' };
    let res = await api(clear, { method: 'POST', headers: json, body: '{}' });
    expect(res.status).to.equal(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).to.match(/confirm/);
    res = await api(clear, {
      method: 'POST',
      headers: { ...json, origin: 'http://evil.example' },
      body: '{"confirm":true}',
    });
    expect(res.status).to.equal(403);
    res = await api(clear, {
      method: 'POST',
      headers: { ...json, 'sec-fetch-site': 'cross-site' },
      body: '{"confirm":true}',
    });
    expect(res.status).to.equal(403);
    const inPage = await page.evaluate(
      (u) =>
        fetch(u, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"confirm":true}',
        }).then((x) => x.status),
      clear,
    );
    expect(inPage).to.equal(403);
    res = await api(clear, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{"confirm":true}',
    });
    expect(res.status).to.equal(415);

    await writeFile(path.join(dir, 'ok'), '');
    // Its downstream task failed because of it (upstream_failed): clear both.
    await page.click('[data-testid="clear-downstream"]');
    await page.waitForSelector('.modal [data-testid="confirm-yes"]');
    await shot('confirm');
    await page.click('[data-testid="confirm-yes"]');
    await page.waitForSelector('h1 .badge[data-state="success"]', { timeout: 60_000 });
    await logShows('fixed now');
    expect(await page.getAttribute('tr[data-task="flaky"]', 'data-state')).to.equal('success');
    expect(await page.getAttribute('tr[data-task="after"]', 'data-state')).to.equal('success');
    await shot('run-cleared');
  });

  it("shows each worker's GPUs and which task holds which, live", async () => {
    type Gpu = { id: string; model: string | null; memoryMiB: number | null; heldBy: unknown };
    const gpus = async () =>
      ((await (await api('/api/v1/workers')).json()) as Array<{ queues: string[]; gpus: Gpu[] }>).find((w) =>
        w.queues.includes('worker'),
      )!.gpus;
    await page.goto(`${url}#/workers`);
    await page.waitForSelector('[data-testid="worker-gpus"] [data-gpu="1"][data-held="no"]');
    const r = await api('/api/v1/dags/web_gpu/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ conf: {} }),
    });
    expect(r.status, await r.clone().text()).to.equal(200);
    const { runId } = (await r.json()) as { runId: string };
    const held = await waitFor(
      async () => {
        const g = await gpus();
        return g.some((x) => x.heldBy) && g;
      },
      'a GPU held',
      30_000,
      200,
    );
    const holder = { runId, taskId: 'hold', tryNumber: 1 };
    // The shape `status --json` has ({id, model, memoryMiB}), plus the holder.
    expect(held).to.have.deep.members([
      { id: '0', model: null, memoryMiB: null, heldBy: holder },
      { id: '1', model: null, memoryMiB: null, heldBy: null },
    ]);
    const heldId = held.find((x) => x.heldBy)!.id;
    const freeId = heldId === '0' ? '1' : '0';
    // The open page follows without a reload.
    const link = page.locator(`[data-testid="worker-gpus"] [data-gpu="${heldId}"][data-held="yes"] a`);
    await link.waitFor({ timeout: 30_000 });
    expect(await link.getAttribute('href')).to.equal(`#/runs/${encodeURIComponent(runId)}/hold`);
    expect(await page.textContent(`[data-gpu="${heldId}"]`)).to.match(
      new RegExp(`^GPU ${heldId} · held by hold \\(.+\\) \\(try 1\\)$`),
    );
    expect(await page.textContent(`[data-gpu="${freeId}"]`)).to.equal(`GPU ${freeId} · free`);
    await shot('workers-gpus');

    await writeFile(path.join(dir, 'gpu-go'), '');
    await page.waitForSelector(`[data-testid="worker-gpus"] [data-gpu="${heldId}"][data-held="no"]`, {
      timeout: 30_000,
    });
    expect((await gpus()).map((x) => x.heldBy)).to.deep.equal([null, null]);
  });

  it('shows every page, and no secret value in any page or API answer', async () => {
    const runs = (await (await api('/api/v1/runs?dagId=web_demo')).json()) as Array<{ runId: string }>;
    const runId = encodeURIComponent(runs[0]!.runId);
    const pages: Array<[string, string, string]> = [
      ['dags', '', 'tr[data-dag]'],
      ['dag', '#/dags/web_demo', '[data-testid="grid"] .cell[data-state="success"]'],
      ['run', `#/runs/${runId}/second`, '[data-testid="gantt"]'],
      ['workers', '#/workers', '[data-testid="workers-table"] tbody tr'],
      ['swarm', '#/swarm', 'main section'],
      ['variables', '#/variables', '[data-testid="variables-table"] tbody tr'],
    ];
    for (const [name, hash, ready] of pages) {
      await page.goto(url + hash);
      await page.waitForSelector(ready, { timeout: 30_000 });
      if (name === 'run') await logShows('the secret is');
      await page.waitForTimeout(300);
      await shot(name);
      expect(await page.content(), `page ${name}`).not.to.include(SECRET);
    }
    expect(await page.textContent('[data-testid="variables-table"]')).to.include('***');
    for (const u of [
      '/api/v1/dags',
      '/api/v1/dags/web_demo',
      '/api/v1/dags/web_demo/grid',
      '/api/v1/dags/web_demo/graph',
      '/api/v1/runs',
      `/api/v1/runs/${runId}`,
      `/api/v1/runs/${runId}/tasks/second/logs`,
      '/api/v1/workers',
      '/api/v1/queues',
      '/api/v1/swarm',
      '/api/v1/variables',
      '/api/v1/pools',
    ]) {
      const r = await api(u);
      const text = await r.text();
      expect(r.status, `${u}: ${text}`).to.equal(200);
      expect(text, u).not.to.include(SECRET);
    }
    const log = await (await api(`/api/v1/runs/${runId}/tasks/second/logs`)).text();
    expect(log).to.include('the secret is ***');
  });

  it("shows the autoscaler's last recorded decisions on the swarm page", async () => {
    const { stack } = (await (await api('/api/v1/swarm')).json()) as { stack: string };
    const db = new Db({ url: DATABASE_URL, schema: p.schema });
    try {
      // As `airtasks autoscale` records a scale-up (test/integration/autoscale-history.test.ts drives that).
      await recordDecision(
        db,
        {
          at: new Date(Date.now() - 90_000),
          stack,
          queue: 'worker',
          service: `${stack}_worker-worker`,
          action: 'up',
          current: 1,
          wanted: 3,
          target: 3,
          scaled: true,
          inputs: { ready: 7, unacked: null, running: 0, backlog: 7, concurrency: 2, min: 1, max: 3 },
          nodes: null,
          reason: 'backlog 7 needs 3 worker(s) of concurrency 2',
          error: null,
        },
        true,
        { keep: 500, maxAgeMs: 7 * 24 * 3600_000 },
      );
    } finally {
      await db.close();
    }
    const view = (await (await api('/api/v1/swarm')).json()) as { decisions: Array<Record<string, unknown>> };
    expect(view.decisions).to.have.length(1);
    expect(view.decisions[0]).to.deep.include({ queue: 'worker', action: 'up', current: 1, target: 3 });
    await page.goto(url + '#/swarm');
    const row = '[data-testid="autoscaler-decisions"] tr[data-action="up"]';
    await page.waitForSelector(row, { timeout: 30_000 });
    const text = (await page.textContent(row))!;
    expect(text).to.match(/1m 3\ds ago/);
    expect(text).to.include('worker').and.include('1 → 3');
    expect(text).to.include('ready 7 · unacked ? · running 0 · backlog 7 · ×2 per worker · 1..3');
    await shot('swarm-decisions');
  });

  it('needs the token when given one, and refuses to expose itself without one', async () => {
    const bad = await runCli(['web', '--host', '0.0.0.0', '--port', '0'], {
      ...p.env,
      AIRTASKS_WEB_TOKEN: '',
    });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/token/);
    const token = randomBytes(12).toString('hex');
    const guarded = await p.start(['web', '--port', '0', '--token', token], 'airtasks dashboard: ');
    const at = /airtasks dashboard: (\S+)/.exec(guarded.output)![1]!;
    expect((await fetch(new URL('/api/v1/dags', at))).status).to.equal(401);
    const ok = await fetch(new URL('/api/v1/dags', at), { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).to.equal(200);
    const ctx = await browser.newContext();
    const p2 = await ctx.newPage();
    await p2.goto(at);
    await p2.waitForSelector('input[name="token"]');
    await p2.fill('input[name="token"]', token);
    await p2.click('button[type="submit"]');
    await p2.waitForSelector('tr[data-dag="web_demo"]');
    const cookie = (await ctx.cookies()).find((c) => c.name === 'airtasks_session')!;
    expect(cookie.httpOnly).to.equal(true);
    expect(cookie.sameSite).to.equal('Strict');
    await ctx.close();
  });
});
