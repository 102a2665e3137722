// Headless Debian Chromium half of benchmarks/graph_rewrite_bench.py (run that, not this).
//
//   node benchmarks/graph_rewrite_bench.mjs CONFIG.json  ->  JSON on stdout
//
// CONFIG: {"models": {"label": "path/to/model.json relative to the repo"}, "runs": 200,
//          "warmup": 20, "chromium": "/usr/bin/chromium"}
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, launch } from '../webdemo/tests/browser.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const srv = await serve(REPO);
const { context, close } = await launch(config.chromium || '/usr/bin/chromium');
try {
  const page = await context.newPage();
  await page.goto(`${srv.origin}/benchmarks/graph_rewrite_bench.html`);
  const urls = Object.fromEntries(Object.entries(config.models).map(([k, p]) => [k, `${srv.origin}/${p}`]));
  const out = await page.evaluate(([u, r, w]) => self.bench(u, r, w), [urls, config.runs || 200, config.warmup || 20]);
  console.log(JSON.stringify(out));
} finally {
  await close();
  srv.server.close();
}
