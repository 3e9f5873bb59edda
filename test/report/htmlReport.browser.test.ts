import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { runCycles } from '../../src/pipeline/cycle.js';
import { openRuntime } from '../../src/pipeline/runtime.js';
import { Chromium, findChromium } from '../helpers/chromium.js';
import { FakeClock } from '../helpers/fakeClock.js';
import { REPO_ROOT, useTempDir } from '../helpers/tmp.js';
import { makeWorld, quietLogger, spawnCli, type World } from '../helpers/world.js';

const tempDir = useTempDir();
const worlds: World[] = [];
afterEach(async () => {
  for (const world of worlds.splice(0)) await world.close();
});

/** Screenshots, the PDF and the page are kept here for a person to look at (gitignored). */
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'report');
const chromium = findChromium();

/** Eleven cycles per type on one store: a failed job retried, a users shard held by the gate and then confirmed. */
async function storeWithHistory(): Promise<World> {
  // The polls and the failed job's retry pass on a fake clock the emulator shares (test/helpers/fakeClock.ts), instead
  // of seconds of real waiting. It starts an hour back: every cycle ends before the report's period does (the real now).
  const clock = new FakeClock(Date.now() - 3_600_000);
  const w = await makeWorld(tempDir(), {
    tweets: 400,
    users: 80,
    emulator: { faults: { jobFail: { count: 1 } }, processingMs: 20, clock: () => clock.now().getTime() },
    config: { jobs: { shardSize: 200, pollIntervalSeconds: 0.1 } },
  });
  worlds.push(w);
  const raw = (extra: Record<string, unknown>) =>
    parseConfig({ store: { path: w.storePath }, api: { baseUrl: w.emulator.url, timeoutSeconds: 10 }, jobs: { shardSize: 200, pollIntervalSeconds: 0.1 }, ...extra }, w.configPath, w.env);
  const strict = raw({ reconcile: { maxDeleteFraction: 0.001 } });
  const runtime = openRuntime(strict, quietLogger(), w.env, { clock });
  try {
    const signal = new AbortController().signal;
    // The first users cycle deletes more than 0.1% of its IDs: held, then confirmed by an operator.
    const [held] = await clock.run(runCycles({ ...runtime.context(signal), config: strict }, ['users'], { trigger: 'manual' }), 'the held users cycle');
    expect(held!.state).toBe('held');
    await clock.run(runCycles({ ...runtime.context(signal, { confirmDeletions: true }), config: strict }, ['users'], { trigger: 'manual' }), 'the confirmed users cycle');
    const normal = raw({});
    for (let i = 0; i < 11; i++) {
      const summaries = await clock.run(runCycles({ ...runtime.context(signal), config: normal }, i < 10 ? ['tweets', 'users'] : ['tweets'], { trigger: 'schedule' }), `cycles #${i + 1}`);
      for (const summary of summaries) expect(summary.state).toBe('closed');
    }
  } finally {
    runtime.close();
  }
  return w;
}

// .ci/run installs chromium: under CI its absence is a failure, elsewhere the browser test is skipped.
it.runIf(!chromium && process.env.CI)('chromium is installed for the browser test (apt-get install chromium)', () => {
  expect(chromium).not.toBeNull();
});

describe.skipIf(!chromium)('report --format html in headless Chromium (Debian package)', () => {
  it('renders a self-contained page with a chart per type, no script errors and no network request', async () => {
    const w = await storeWithHistory();
    const out = path.join(w.dir, 'report.html');
    // The two reports and the browser start together; each is awaited where it is needed.
    const run = spawnCli(['report', '--format', 'html', '--out', out, '--config', w.configPath], w.env);
    const json = spawnCli(['report', '--format', 'json', '--config', w.configPath], w.env);
    const browser = new Chromium(chromium!);
    try {
      expect((await run.exit).code).toBe(0);
      expect((await json.exit).code).toBe(0);
      const report = JSON.parse(json.stdout());
      mkdirSync(ARTIFACTS, { recursive: true });
      copyFileSync(out, path.join(ARTIFACTS, 'report.html'));

      const session = await browser.page();
      const problems: string[] = [];
      const requests: string[] = [];
      const pageUrl = pathToFileURL(out).href;
      browser.on((message) => {
        if (message.sessionId !== session) return;
        const p = message.params ?? {};
        if (message.method === 'Runtime.exceptionThrown') problems.push(`exception: ${p.exceptionDetails?.text}`);
        if (message.method === 'Runtime.consoleAPICalled' && p.type === 'error') problems.push(`console.error: ${JSON.stringify(p.args)}`);
        if (message.method === 'Log.entryAdded' && p.entry?.level === 'error') problems.push(`log: ${p.entry.text}`);
        if (message.method === 'Network.requestWillBeSent' && p.request?.url !== pageUrl) requests.push(p.request?.url);
      });
      for (const domain of ['Page', 'Runtime', 'Log', 'Network']) await browser.send(`${domain}.enable`, {}, session);
      const evaluate = async (expression: string) => (await browser.send('Runtime.evaluate', { expression, returnByValue: true }, session)).result.value;
      const load = async (width: number, height: number, mobile: boolean) => {
        await browser.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile }, session);
        const loaded = browser.next('Page.loadEventFired', session);
        await browser.send('Page.navigate', { url: pageUrl }, session);
        await loaded;
      };
      /** The whole page, and the first screenful (`<name>-top.png`, legible at a glance). */
      const screenshot = async (name: string, width: number, height: number) => {
        const { cssContentSize } = await browser.send('Page.getLayoutMetrics', {}, session);
        for (const [file, clipHeight] of [[`${name}.png`, Math.ceil(cssContentSize.height)], [`${name}-top.png`, height]] as const) {
          const shot = await browser.send(
            'Page.captureScreenshot',
            { format: 'png', captureBeyondViewport: true, clip: { x: 0, y: 0, width, height: clipHeight, scale: 1 } },
            session,
          );
          writeFileSync(path.join(ARTIFACTS, file), Buffer.from(shot.data, 'base64'));
        }
      };

      await load(1100, 900, false);
      const text: string = await evaluate('document.body.innerText');
      const charts = await evaluate(`[...document.querySelectorAll('figure svg')].map((svg) => svg.querySelectorAll('rect').length)`);
      expect(await evaluate('document.scripts.length')).toBe(0);
      // A chart per type, with bars.
      expect(charts).toHaveLength(2);
      for (const bars of charts) expect(bars).toBeGreaterThanOrEqual(1);
      // The numbers: per type the cycles, IDs checked and jobs the JSON report counts, and each action count.
      for (const type of report.types) {
        expect(type.cyclesClosed).toBeGreaterThanOrEqual(10);
        for (const n of [type.cyclesClosed, type.idsChecked, type.jobsRun]) expect(text).toContain(n.toLocaleString('en-US'));
        for (const [reason, actions] of Object.entries(type.actionsByReason as Record<string, Record<string, number>>)) {
          for (const [action, n] of Object.entries(actions)) expect(text).toMatch(new RegExp(`${reason}\\s+${action}\\s+${n.toLocaleString('en-US')}`));
        }
      }
      const rowsPerType = await evaluate(`[...document.querySelectorAll('details table tbody')].map((t) => t.rows.length)`);
      expect(rowsPerType).toEqual([11, 11]); // tweets: 11 cycles; users: the held-then-confirmed one and 10 more
      expect(text).toContain('Last audit');
      expect(text).toContain('No audit recorded.');
      expect(text).toMatch(/job failed|job \S+ failed|failed\s/);
      expect(text).toMatch(/shard retried with job \d+ \(complete\); shard applied/);
      expect(text).toMatch(/confirmed shard\s+confirmed\s+rows deleted\s+#\d+ \/ 1/);
      expect(text).toContain('"maxAge": "30d"');
      await screenshot('desktop', 1100, 900);

      // A phone: nothing wider than the screen except inside the sideways-scrolling table boxes.
      await load(390, 844, true);
      expect(await evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
      await screenshot('phone', 390, 844);

      // Printed: the print styles apply and the page makes a PDF.
      await browser.send('Emulation.setEmulatedMedia', { media: 'print' }, session);
      expect(await evaluate(`getComputedStyle(document.querySelector('details > summary')).display`)).toBe('none');
      const pdf = await browser.send('Page.printToPDF', { printBackground: true }, session);
      writeFileSync(path.join(ARTIFACTS, 'report.pdf'), Buffer.from(pdf.data, 'base64'));
      expect(Buffer.from(pdf.data, 'base64').subarray(0, 5).toString()).toBe('%PDF-');

      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
    // Twenty-three cycles and a browser: minutes when the machine is busy.
  }, 240_000);
});
