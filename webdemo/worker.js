// The inference worker. The page loads this file as a classic script and starts the function's
// source text, appended to the bundled tfjs source, as a Blob worker: a page opened as file://
// may not start a Worker from a file URL nor fetch files, but it may run a Blob worker.
// Everything below runs in the worker; it never touches the network (fetch is replaced).
/* eslint-disable no-restricted-globals */
function tfmelanomaWorker() {
  'use strict';
  const tf = self.tf;
  // Decoded images above this many pixels are reduced before analysis (memory: 4 bytes/px in
  // the canvas, 12 in the float tensor); above MAX_PIXELS_ABSOLUTE they are refused unread.
  const MAX_PIXELS = 4096 * 4096;
  const REDUCED_LONG_SIDE = 2048;
  const MAX_PIXELS_ABSOLUTE = 200e6;
  const BACKEND_TIMEOUT_MS = 30000;
  let model = null;
  let inputHW = null;
  let meta = null;

  class UserError extends Error {
    constructor(kind, message) {
      super(message);
      this.kind = kind;
    }
  }

  function b64ToBytes(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  const FORMAT_NAMES = {
    jpeg: 'JPEG', png: 'PNG', gif: 'GIF', webp: 'WebP', bmp: 'BMP', heic: 'HEIC/HEIF', avif: 'AVIF', tiff: 'TIFF',
  };

  /** The file format from its first bytes (the browser's MIME type is only a guess from the name). */
  function sniff(b) {
    const ascii = (from, to) => String.fromCharCode(...b.subarray(from, to));
    if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
    if (b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
    if (ascii(0, 4) === 'GIF8') return 'gif';
    if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
    if (ascii(0, 2) === 'BM') return 'bmp';
    if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'tiff';
    if (ascii(4, 8) === 'ftyp') {
      const brand = ascii(8, 12);
      if (/^(heic|heix|hevc|hevx|heim|heis|mif1|msf1)$/.test(brand)) return 'heic';
      if (/^avi[fs]$/.test(brand)) return 'avif';
    }
    return null;
  }

  /** Width and height from a PNG IHDR or JPEG SOF header, or null (then the decoder decides). */
  function headerSize(b, kind) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (kind === 'png' && b.length >= 24) return [dv.getUint32(16), dv.getUint32(20)];
    if (kind !== 'jpeg') return null;
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return null;
      const marker = b[i + 1];
      const len = dv.getUint16(i + 2);
      // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return [dv.getUint16(i + 7), dv.getUint16(i + 5)];
      }
      i += 2 + len;
    }
    return null;
  }

  async function chooseBackend(requested, flags, wasmB64) {
    // The wasm backend fetches its .wasm through the platform's fetch: serve the embedded
    // binary from memory and refuse everything else, so nothing ever goes to the network.
    const platform = tf.env().platform;
    platform.fetch = (path) => {
      const name = String(path).replace(/^embedded:/, '');
      if (String(path).startsWith('embedded:') && wasmB64[name]) {
        return Promise.resolve(new Response(b64ToBytes(wasmB64[name]), { headers: { 'Content-Type': 'application/wasm' } }));
      }
      return Promise.reject(new Error(`network access is disabled in this demo (${path})`));
    };
    // tfjs wants a path for each of its three binaries; the two not shipped fail in fetch above.
    const names = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
    tf.wasm.setWasmPaths(Object.fromEntries(names.map((n) => [n, `embedded:${n}`])), true);
    // Only the SIMD binary ships (vendor/tfjs-bundle.js): no threads, and no WASM without SIMD.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    if (flags.simd === false) tf.env().set('WASM_HAS_SIMD_SUPPORT', false);
    const order = requested ? [requested] : ['webgl', 'wasm', 'cpu'];
    const skipped = [];
    for (const name of order) {
      const why = await unsuitable(name, !!requested);
      if (why) {
        skipped.push(`${name}: ${why}`);
        if (requested) throw new Error(`backend ${name} cannot run here: ${why}`);
        continue;
      }
      try {
        // A backend that never settles must not leave the page waiting forever: give up
        // after BACKEND_TIMEOUT_MS and try the next.
        const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), BACKEND_TIMEOUT_MS));
        if (await Promise.race([tf.setBackend(name), timeout])) {
          await tf.ready();
          return { name, skipped };
        }
        skipped.push(`${name}: failed to initialise`);
      } catch (err) {
        skipped.push(`${name}: ${err.message || err}`);
      }
    }
    throw new Error(`no TF.js backend could start (${skipped.join('; ')})`);
  }

  /** Why a backend should not be used here, or null when it is fine. `forced`: asked for by
   * name (then a software WebGL is accepted: the tests run the WebGL kernels that way). */
  async function unsuitable(name, forced) {
    if (!tf.findBackendFactory(name)) return 'not in this page\'s bundle';
    if (name === 'wasm') {
      if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) return 'no WebAssembly SIMD in this browser';
      return null;
    }
    if (name === 'webgl') {
      if (typeof OffscreenCanvas === 'undefined') return 'no OffscreenCanvas in workers';
      const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
      if (!gl) return 'WebGL 2 not available';
      const ext = gl.getExtension('WEBGL_debug_renderer_info');
      const renderer = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
      // A software GL (no GPU) is slower than WASM and less exact: skip it.
      if (!forced && /swiftshader|llvmpipe|software|basic render/i.test(renderer)) return `software renderer (${renderer})`;
      return null;
    }
    return null;
  }

  async function init(msg) {
    const t0 = performance.now();
    const pre = msg.meta.preprocessing || {};
    // The page implements exactly one preprocessing; refuse a model exported for another.
    if (pre.resize !== 'bilinear' || pre.half_pixel_centers !== true || pre.antialias !== false || !String(pre.crop).startsWith('none')) {
      throw new Error(`the model's meta.json asks for preprocessing this page does not implement: ${JSON.stringify(pre)}`);
    }
    const backend = await chooseBackend(msg.backend || null, msg.flags || {}, msg.wasm);
    const mj = msg.modelJson;
    const weights = b64ToBytes(msg.weights);
    model = await tf.loadGraphModel({
      load: async () => ({
        modelTopology: mj.modelTopology,
        format: mj.format,
        generatedBy: mj.generatedBy,
        convertedBy: mj.convertedBy,
        signature: mj.signature,
        userDefinedMetadata: mj.userDefinedMetadata,
        modelInitializer: mj.modelInitializer,
        weightSpecs: mj.weightsManifest.flatMap((g) => g.weights),
        weightData: weights.buffer,
      }),
    });
    inputHW = [msg.meta.input.height, msg.meta.input.width];
    meta = msg.meta;
    // Warm-up: compiles shaders / wasm kernels once, so the first photo is not slow.
    const warm = tf.tidy(() => {
      const x = tf.zeros([1, ...inputHW, 3]);
      return meta.cam ? model.execute(x, [meta.cam.feature_node, model.outputNodes[0]]) : [model.predict(x)];
    });
    await Promise.all(warm.map((t) => t.data()));
    warm.forEach((t) => t.dispose());
    const details = {};
    if (backend.name === 'wasm') {
      details.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      details.threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    }
    return {
      type: 'ready',
      backend: backend.name,
      skipped: backend.skipped,
      details,
      loadMs: performance.now() - t0,
      numTensors: tf.memory().numTensors,
      tfjsVersion: tf.version_core,
    };
  }

  async function decode(blob, name) {
    const head = new Uint8Array(await blob.slice(0, 65536).arrayBuffer());
    const kind = sniff(head);
    if (blob.size === 0) throw new UserError('empty', `“${name}” is empty (0 bytes).`);
    if (!kind) {
      // The browser's type is only a guess from the file name: name what the content is not.
      throw new UserError('not-image', `“${name}” is not a photo this page can read: its content is not JPEG, PNG, GIF, WebP, BMP, HEIC, AVIF or TIFF, whatever its name says. Choose a JPEG or PNG photo of the skin lesion.`);
    }
    const dims = headerSize(head, kind);
    if (dims && dims[0] * dims[1] > MAX_PIXELS_ABSOLUTE) {
      throw new UserError('too-large', `“${name}” is ${dims[0]} × ${dims[1]} pixels, too large to open here. Reduce it below 200 megapixels.`);
    }
    let bmp;
    try {
      bmp = await createImageBitmap(blob, { imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    } catch (err) {
      if (kind === 'heic') {
        throw new UserError('unsupported', `“${name}” is a HEIC/HEIF photo, which this browser cannot decode. Convert it to JPEG first (on an iPhone: Settings → Camera → Formats → Most Compatible, or share it as JPEG).`);
      }
      if (kind === 'tiff') {
        throw new UserError('unsupported', `“${name}” is a TIFF image, which browsers cannot display. Save it as JPEG or PNG (any image viewer or editor can: Export or Save as) and try again.`);
      }
      if (kind === 'avif') {
        throw new UserError('unsupported', `“${name}” is an AVIF image, which this browser cannot decode. Use an up-to-date browser or convert it to JPEG.`);
      }
      throw new UserError('corrupt', `“${name}” looks like a ${FORMAT_NAMES[kind]} file but cannot be decoded: it is probably truncated or corrupt. Re-save or re-export the photo and try again.`);
    }
    const notes = [];
    if (bmp.width * bmp.height > MAX_PIXELS) {
      const s = REDUCED_LONG_SIDE / Math.max(bmp.width, bmp.height);
      const w = Math.max(1, Math.round(bmp.width * s));
      const h = Math.max(1, Math.round(bmp.height * s));
      notes.push({ kind: 'huge', text: `Large photo (${bmp.width} × ${bmp.height} px): reduced to ${w} × ${h} in the browser before analysis.` });
      const small = await createImageBitmap(bmp, { resizeWidth: w, resizeHeight: h, resizeQuality: 'high' });
      bmp.close();
      bmp = small;
    }
    return { bmp, kind, notes };
  }

  /** RGBA bitmap -> float32 RGB; alpha flattened onto white; reports alpha and grayscale. */
  function pixels(bmp, notes) {
    const { width: w, height: h } = bmp;
    const ctx = new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true });
    ctx.drawImage(bmp, 0, 0);
    bmp.close();
    const rgba = ctx.getImageData(0, 0, w, h).data;
    const rgb = new Float32Array(w * h * 3);
    let transparent = 0;
    let gray = true;
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      const a = rgba[i + 3] / 255;
      if (a < 1) transparent++;
      const r = rgba[i];
      const g = rgba[i + 1];
      const b = rgba[i + 2];
      if (gray && (r !== g || g !== b)) gray = false;
      rgb[j] = a * r + (1 - a) * 255;
      rgb[j + 1] = a * g + (1 - a) * 255;
      rgb[j + 2] = a * b + (1 - a) * 255;
    }
    if (transparent > 0) {
      notes.push({ kind: 'alpha', text: `The image has transparent areas (${((100 * transparent) / (w * h)).toFixed(1)} % of pixels): they were filled with white before analysis.` });
    }
    if (gray) {
      notes.push({ kind: 'grayscale', text: 'Grayscale image: the model was trained on colour photos, so this result is less reliable. Use a colour photo if you can.' });
    }
    return { rgb, w, h };
  }

  /** Image-check statistics of the model input (export/ood.py `image_stats`, same formulas). */
  function imageStats(x, h, w) {
    const n = h * w;
    const lum = new Float32Array(n);
    let sum = 0;
    let sat = 0;
    let chroma = 0;
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      const r = x[j];
      const g = x[j + 1];
      const b = x[j + 2];
      const l = Math.fround(Math.fround(Math.fround(0.299 * r) + Math.fround(0.587 * g)) + Math.fround(0.114 * b));
      lum[i] = l;
      sum += l;
      if (l <= 5 || l >= 250) sat++;
      chroma += Math.max(r, g, b) - Math.min(r, g, b);
    }
    const mean = sum / n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (lum[i] - mean) ** 2;
    let ls = 0;
    let ls2 = 0;
    let m = 0;
    for (let y = 1; y < h - 1; y++) {
      for (let xx = 1; xx < w - 1; xx++) {
        const i = y * w + xx;
        const lap = lum[i + 1] + lum[i - 1] + lum[i + w] + lum[i - w] - 4 * lum[i];
        ls += lap;
        ls2 += lap * lap;
        m++;
      }
    }
    const lapMean = ls / m;
    return { luma_std: Math.sqrt(v / n), saturated: sat / n, sharpness: ls2 / m - lapMean * lapMean, chroma: chroma / n };
  }

  /** Min over classes of the Mahalanobis distance of the pooled features (export/ood.py). */
  function mahalanobis(f, fit) {
    let best = Infinity;
    for (const mu of fit.means) {
      const d = f.map((v, k) => v - mu[k]);
      let q = 0;
      for (let a = 0; a < d.length; a++) {
        const row = fit.precision[a];
        let s = 0;
        for (let b = 0; b < d.length; b++) s += row[b] * d[b];
        q += d[a] * s;
      }
      best = Math.min(best, q);
    }
    return Math.sqrt(Math.max(best, 0));
  }

  /** The out-of-distribution gate (meta.gate): reasons to refuse a diagnosis, [] when none. */
  function gate(meta, stats, origW, origH, pooled) {
    const g = meta.gate || {};
    const c = g.image_checks || {};
    const reasons = [];
    if (Math.min(origW, origH) < (c.min_side || 32)) {
      reasons.push({ kind: 'too-small', text: `The image is only ${origW} × ${origH} pixels: too small to show a lesion.` });
    }
    if (c.luma_std_min !== undefined && stats.luma_std < c.luma_std_min) {
      reasons.push({ kind: 'uniform', text: 'The image is almost one flat colour.' });
    }
    if (c.saturated_max !== undefined && stats.saturated > c.saturated_max) {
      reasons.push({ kind: 'saturated', text: 'Most of the image is pure black or pure white (over- or under-exposed).' });
    }
    if (c.chroma_min !== undefined && stats.chroma < c.chroma_min) {
      reasons.push({ kind: 'grayscale', text: 'The image has (almost) no colour: the model needs a colour photo.' });
    }
    if (c.sharpness_min !== undefined && stats.sharpness < c.sharpness_min) {
      reasons.push({ kind: 'blurred', text: 'The image is very blurred or has no detail.' });
    }
    if (!reasons.length && g.mahalanobis && pooled) {
      const d = mahalanobis(pooled, g.mahalanobis);
      if (d > g.mahalanobis.threshold) {
        reasons.push({ kind: 'unfamiliar', text: 'It is unlike the dermoscopic close-ups the model was trained on.', distance: d });
      }
    }
    return reasons;
  }

  async function predict(msg) {
    const t0 = performance.now();
    const { bmp, notes } = await decode(msg.blob, msg.name);
    const { rgb, w, h } = pixels(bmp, notes);
    const t1 = performance.now();
    const cam = meta.cam;
    const outs = tf.tidy(() => {
      const x = tf.tensor3d(rgb, [h, w, 3], 'float32');
      // Same op as training: tf.image.resize(bilinear), half-pixel centres, no antialias.
      const resized = tf.image.resizeBilinear(x, inputHW, false, true);
      const batch = tf.expandDims(resized, 0);
      const heads = cam ? model.execute(batch, [cam.feature_node, model.outputNodes[0]]) : [null, model.predict(batch)];
      return [resized, ...heads];
    });
    const [resizedT, featT, probT] = outs;
    const probs = Array.from(await probT.data());
    const t2 = performance.now();
    const input = await resizedT.data();
    let pooled = null;
    let camMap = null;
    let camShape = null;
    if (featT) {
      const [, fh, fw, k] = featT.shape;
      const f = await featT.data();
      const mel = meta.class_names.indexOf(meta.positive_class);
      const nc = cam.bias.length;
      const wv = new Float32Array(k);
      for (let j = 0; j < k; j++) {
        let other = 0;
        for (let c = 0; c < nc; c++) if (c !== mel) other += cam.weights[j][c];
        wv[j] = cam.weights[j][mel] - other / (nc - 1);
      }
      let bOther = 0;
      for (let c = 0; c < nc; c++) if (c !== mel) bOther += cam.bias[c];
      const b = cam.bias[mel] - bOther / (nc - 1);
      pooled = new Array(k).fill(0);
      camMap = new Float32Array(fh * fw);
      for (let p = 0; p < fh * fw; p++) {
        let s = b;
        for (let j = 0; j < k; j++) {
          const v = f[p * k + j];
          pooled[j] += v;
          s += v * wv[j];
        }
        camMap[p] = s;
      }
      for (let j = 0; j < k; j++) pooled[j] /= fh * fw;
      camShape = [fh, fw];
    }
    outs.forEach((t) => t && t.dispose());
    const stats = imageStats(input, inputHW[0], inputHW[1]);
    const reasons = gate(meta, stats, w, h, pooled);
    return {
      type: 'result', probs, notes, width: w, height: h, gate: { ok: reasons.length === 0, reasons, stats },
      cam: camMap ? Array.from(camMap) : null, camShape,
      decodeMs: t1 - t0, inferenceMs: t2 - t1, numTensors: tf.memory().numTensors,
    };
  }

  self.onmessage = async (ev) => {
    const msg = ev.data;
    try {
      let reply;
      if (msg.type === 'init') reply = await init(msg);
      else if (msg.type === 'predict') reply = await predict(msg);
      else if (msg.type === 'memory') reply = { type: 'memory', ...tf.memory() };
      else throw new Error(`unknown message type ${msg.type}`);
      self.postMessage({ ...reply, id: msg.id });
    } catch (err) {
      self.postMessage({
        type: 'error', id: msg.id,
        kind: err instanceof UserError ? err.kind : 'internal',
        message: err instanceof UserError ? err.message : `Internal error: ${err && err.message ? err.message : err}`,
      });
    }
  };
}
