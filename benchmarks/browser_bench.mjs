// Browser timings for benchmarks/browser.py (run that, not this): headless Debian Chromium.
//
//   node benchmarks/browser_bench.mjs CONFIG.json   ->  JSON on stdout
//
// CONFIG: {"runs": 50, "configs": [{"label", "query", "isolated"}], "paper": {"modelUrl", "size",
//          "backends": ["wasm", "cpu"]}}
// The demo: load time = navigation to "model ready" (worker up, backend chosen, model compiled
// and warmed up); latency = analyse() of one gallery JPEG end to end (decode, resize, predict,
// read back), and the worker's own inference time. The paper-style page: per prediction, load
// the model from the server and predict, as its page does.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, launch } from '../webdemo/tests/browser.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function demo(context, origin, cfg, runs) {
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(`${origin}/webdemo/index.html?${cfg.query}`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 300000 });
  const loadMs = Date.now() - t0;
  const info = await page.evaluate(async () => ({ ready: document.body.dataset.ready, backend: document.getElementById('backend').textContent, isolated: self.crossOriginIsolated }));
  if (info.ready !== 'true') throw new Error(`${cfg.label}: ${await page.textContent('#message')}`);
  const times = await page.evaluate(async (n) => {
    const bytes = Uint8Array.from(atob(self.TFMELANOMA_GALLERY[0].jpeg), (c) => c.charCodeAt(0));
    const e2e = [], inf = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const { result } = await self.tfmelanoma.analyse(new Blob([bytes], { type: 'image/jpeg' }), 'b.jpg');
      e2e.push(performance.now() - t);
      inf.push(result.inferenceMs);
    }
    return { e2e, inf };
  }, runs);
  await page.close();
  return { ...cfg, ...info, loadMs, medianMs: median(times.e2e), medianInferenceMs: median(times.inf), runs };
}

async function paper(context, origin, p, backend, runs, reload) {
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(`${origin}/benchmarks/browser_paper.html?backend=${backend}`);
  const got = await page.evaluate(() => self.paperReady);
  const loadMs = Date.now() - t0;
  const times = await page.evaluate(async ({ modelUrl, size, n, reload }) => {
    const bytes = Uint8Array.from(atob(self.TFMELANOMA_GALLERY_0), (c) => c.charCodeAt(0));
    const img = await createImageBitmap(new Blob([bytes], { type: 'image/jpeg' }));
    const out = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await self.paperPredict(modelUrl, img, size, reload);
      out.push(performance.now() - t);
    }
    return { out, tensors: tf.memory().numTensors, bytes: tf.memory().numBytes };
  }, { modelUrl: `${origin}${p.modelUrl}`, size: p.size, n: runs, reload }).catch((e) => ({ error: String(e) }));
  await page.close();
  const label = `paper-style model, ${reload ? 'reloaded per prediction' : 'loaded once'}, ${backend}`;
  if (times.error) return { label, error: times.error };
  return {
    label, backend: got, loadMs, runs,
    medianMs: median(times.out), tensorsLeft: times.tensors, bytesLeft: times.bytes,
  };
}

async function main() {
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const runs = config.runs || 50;
  const gallery0 = JSON.parse(readFileSync(resolve(REPO, 'webdemo/gallery/gallery.js'), 'utf8').split('self.TFMELANOMA_GALLERY = ')[1].trim().replace(/;$/, ''))[0].jpeg;
  const plain = await serve(REPO);
  // COOP/COEP make the page cross-origin isolated: SharedArrayBuffer, hence wasm threads.
  const isolated = await serve(REPO, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
  const { context, close } = await launch(config.chromium);
  await context.addInitScript((b64) => { self.TFMELANOMA_GALLERY_0 = b64; }, gallery0);
  const results = [];
  try {
    // Warm-up (not recorded): the first page of a fresh browser pays for process start-up.
    await demo(context, plain.origin, { label: 'warm-up', query: 'backend=wasm' }, 2).catch(() => {});
    for (const cfg of config.configs) {
      const origin = cfg.isolated ? isolated.origin : plain.origin;
      results.push(await demo(context, origin, cfg, runs).catch((e) => ({ ...cfg, error: String(e) })));
      console.error(JSON.stringify(results.at(-1)));
    }
    for (const backend of (config.paper && config.paper.backends) || []) {
      for (const reload of [true, false]) {
        results.push(await paper(context, plain.origin, config.paper, backend, config.paper.runs || runs, reload));
        console.error(JSON.stringify(results.at(-1)));
      }
    }
  } finally {
    await close();
    plain.server.close();
    isolated.server.close();
  }
  console.log(JSON.stringify(results));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
