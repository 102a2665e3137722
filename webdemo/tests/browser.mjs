// Drives the demo in headless Debian Chromium (playwright-core, never a downloaded browser) and
// prints what happened as JSON; tests/webdemo/test_browser.py makes the assertions.
//
//   node webdemo/tests/browser.mjs CONFIG.json
//
// CONFIG: {"mode": "http" | "file", "uploads": [paths], "memoryRuns": 100,
//          "screenshotDir": "test-artifacts/webdemo", "query": "backend=wasm", "chromium": path,
//          "showcase": {"id": "ISIC_0000004", "path": "docs/img/webdemo.png"}}
// Every request the browser makes is recorded (page, worker and sub-resources) so the test can
// prove nothing goes to another origin; the server also logs what it served.
import { createServer } from 'node:http';
import { readFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { join, dirname, extname, resolve, basename } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.jpg': 'image/jpeg', '.png': 'image/png', '.txt': 'text/plain', '.wasm': 'application/wasm',
};
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps',
  '--disable-extensions', '--metrics-recording-only', '--no-default-browser-check',
];

/** A static server for ROOT on 127.0.0.1; `headers` adds e.g. COOP/COEP for wasm threads. */
export function serve(root = ROOT, headers = {}) {
  const served = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = resolve(join(root, path.endsWith('/') ? `${path}index.html` : path));
    served.push(path);
    try {
      if (!file.startsWith(root) || !statSync(file).isFile()) throw new Error('not found');
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store', ...headers });
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, served, origin: `http://127.0.0.1:${server.address().port}` })));
}

/** Launches Chromium with a fresh profile; returns {browser, context, requests, userDataDir}. */
export async function launch(executablePath = '/usr/bin/chromium', extraArgs = []) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'tfm-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs], viewport: { width: 1100, height: 900 },
  });
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  return { context, requests, close: async () => { await context.close(); rmSync(userDataDir, { recursive: true, force: true }); } };
}

async function waitAnalysed(page, before) {
  await page.waitForFunction((n) => Number(document.body.dataset.analysed || 0) > n, before, { timeout: 120000 });
}

async function readOutcome(page) {
  return page.evaluate(() => {
    const msg = document.getElementById('message');
    const res = document.getElementById('result');
    const gate = document.getElementById('gate');
    return {
      error: msg.hidden ? null : { kind: msg.dataset.kind, text: msg.textContent },
      gate: gate.hidden ? null : { reasons: JSON.parse(gate.dataset.reasons), text: gate.textContent, probs: JSON.parse(gate.dataset.probs) },
      cam: res.hidden || !res.dataset.cam ? null : JSON.parse(res.dataset.cam),
      stats: self.tfmelanoma.last ? self.tfmelanoma.last.gate.stats : null,
      probs: res.hidden ? null : JSON.parse(res.dataset.probs),
      decision: res.hidden ? null : res.dataset.decision,
      decisionText: res.hidden ? null : document.getElementById('decision').textContent,
      notes: [...document.querySelectorAll('#notes li')].map((li) => ({ kind: li.dataset.kind, text: li.textContent })),
    };
  });
}

async function main() {
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const shots = config.screenshotDir ? resolve(config.screenshotDir) : null;
  if (shots) mkdirSync(shots, { recursive: true });
  let srv = null;
  let url;
  const query = config.query ? `?${config.query}` : '';
  if (config.mode === 'http') {
    srv = await serve();
    url = `${srv.origin}/index.html${query}`;
  } else {
    url = `${pathToFileURL(join(ROOT, 'index.html')).href}${query}`;
  }
  // Chromium's fake camera (a green test pattern with a Pac-Man), granted without a prompt.
  const extra = config.camera ? ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] : [];
  const { context, requests, close } = await launch(config.chromium, extra);
  const out = { mode: config.mode, url, console: [], pageErrors: [], gallery: [], uploads: [], memory: [] };
  try {
    const page = await context.newPage();
    page.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => out.pageErrors.push(String(e)));
    const t0 = Date.now();
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 120000 });
    out.ready = await page.evaluate(() => document.body.dataset.ready);
    out.readyMs = Date.now() - t0;
    out.backend = await page.textContent('#backend');
    out.loadTime = await page.textContent('#load-time');
    if (out.ready !== 'true') throw new Error(`page not ready: ${await page.textContent('#message')}`);
    let n = 0;
    for (const id of await page.$$eval('.thumb', (els) => els.map((e) => e.dataset.id))) {
      await page.click(`.thumb[data-id="${id}"]`);
      await waitAnalysed(page, n++);
      out.gallery.push({ id, ...(await readOutcome(page)) });
    }
    if (shots) await page.screenshot({ path: join(shots, `${config.mode}-gallery.png`), fullPage: true });
    if (config.showcase) {
      // The README screenshot: one chosen gallery image analysed, the whole page.
      await page.click(`.thumb[data-id="${config.showcase.id}"]`);
      await waitAnalysed(page, n++);
      await page.screenshot({ path: resolve(config.showcase.path), fullPage: true });
    }
    for (const file of config.uploads || []) {
      // A 20 ms timer on the main thread: its largest gap shows whether the page froze.
      await page.evaluate(() => {
        self.__gap = { max: 0, last: performance.now() };
        self.__timer = setInterval(() => {
          const t = performance.now();
          self.__gap.max = Math.max(self.__gap.max, t - self.__gap.last);
          self.__gap.last = t;
        }, 20);
      });
      await page.setInputFiles('#file', file);
      await waitAnalysed(page, n++);
      const maxGapMs = await page.evaluate(() => {
        clearInterval(self.__timer);
        return Math.max(self.__gap.max, performance.now() - self.__gap.last);
      });
      const outcome = await readOutcome(page);
      out.uploads.push({ file: basename(file), maxGapMs, ...outcome });
      if (shots) await page.screenshot({ path: join(shots, `${config.mode}-upload-${basename(file)}.png`), fullPage: true });
    }
    if (config.camera) {
      await page.click('#camera-btn');
      await page.waitForFunction(() => document.getElementById('camera').videoWidth > 0 && !document.getElementById('camera').paused, null, { timeout: 30000 });
      await page.waitForTimeout(500);
      if (shots) await page.screenshot({ path: join(shots, `${config.mode}-camera.png`), fullPage: true });
      await page.click('#snap');
      await waitAnalysed(page, n++);
      out.camera = {
        ...(await readOutcome(page)),
        stopped: await page.evaluate(() => document.getElementById('camera').srcObject === null && document.getElementById('camera-box').hidden),
      };
    }
    if (config.dropTwo) {
      // two files dropped at once, outside the dashed zone (on the gallery heading)
      const [a, b] = config.dropTwo.map((f) => ({ name: basename(f), b64: readFileSync(f).toString('base64') }));
      const urlBefore = page.url();
      const prevented = await page.evaluate(([fa, fb]) => {
        const dt = new DataTransfer();
        for (const f of [fa, fb]) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: 'image/jpeg' }));
        const target = document.getElementById('gallery-h');
        target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        // false when the page called preventDefault(): the browser then does not open the file
        return !target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, [a, b]);
      await waitAnalysed(page, n++);
      await page.waitForFunction(() => document.querySelector('#notes li[data-kind="multiple"]'), null, { timeout: 10000 });
      out.dropTwo = { ...(await readOutcome(page)), sameUrl: page.url() === urlBefore, prevented };
    }
    if (config.phone) {
      // 390 px wide (a phone): one sample with the heat-map on; nothing may overlap or overflow.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.click(`.thumb[data-id="${config.phone.id}"]`);
      await waitAnalysed(page, n++);
      await page.check('#show-heatmap');
      out.phone = await page.evaluate(() => {
        const box = (id) => document.getElementById(id).getBoundingClientRect().toJSON();
        return {
          scrollWidth: document.documentElement.scrollWidth,
          scale: box('scale'), preview: box('preview'), heatmap: box('heatmap'), decision: box('decision'),
          heatmapVisible: !document.getElementById('heatmap').hidden,
        };
      });
      if (shots) await page.screenshot({ path: join(shots, `${config.mode}-phone-390.png`), fullPage: true });
      await page.setViewportSize({ width: 1100, height: 900 });
      if (shots) await page.screenshot({ path: join(shots, `${config.mode}-heatmap-desktop.png`), fullPage: true });
      await page.uncheck('#show-heatmap');
    }
    if (config.memoryRuns) {
      out.memory = await page.evaluate(async (runs) => {
        const item = self.TFMELANOMA_GALLERY[0];
        const bytes = Uint8Array.from(atob(item.jpeg), (c) => c.charCodeAt(0));
        const counts = [];
        for (let i = 0; i < runs; i++) {
          const { result } = await self.tfmelanoma.analyse(new Blob([bytes], { type: 'image/jpeg' }), 'memory.jpg');
          counts.push(result.numTensors);
        }
        return counts;
      }, config.memoryRuns);
    }
  } finally {
    out.requests = requests;
    out.served = srv ? srv.served : [];
    await close();
    if (srv) srv.server.close();
  }
  console.log(JSON.stringify(out));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err.stack || String(err));
    process.exit(1);
  });
}
