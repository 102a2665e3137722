// The page: starts the inference worker once, feeds it photos (file, drop, camera, gallery) and
// shows the answer in plain words: the decision, the melanoma score on a scale with the uncertain
// band, and (on request) where the model looked. A photo the out-of-distribution gate refuses
// gets no answer at all. Nothing leaves the page.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const MODEL = self.TFMELANOMA_MODEL;
  const meta = MODEL && MODEL.meta;
  const LABELS = {
    melanoma: 'Melanoma suspected — see a doctor',
    non_melanoma: 'No melanoma features found',
    uncertain: 'Uncertain — the model cannot tell',
  };
  const ADVICE = {
    melanoma: 'The model sees features it associates with melanoma. Show this mole to a doctor (a GP or a dermatologist) soon.',
    non_melanoma: 'This is not an all-clear: the model misses some melanomas. Show any new, changing, itching or bleeding mole to a doctor, whatever this page says.',
    uncertain: 'The score falls in the uncertain band, where the model is often wrong in both directions. Do not read anything into it: have a doctor look at the mole.',
  };

  let worker = null;
  let nextId = 1;
  const pending = new Map();
  let queue = Promise.resolve();
  let analysed = 0;
  let lastCam = null;

  function call(msg, transfer) {
    return new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...msg, id }, transfer || []);
    });
  }

  function onWorkerMessage(ev) {
    const msg = ev.data;
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.type === 'error') {
      const err = new Error(msg.message);
      err.kind = msg.kind;
      p.reject(err);
    } else p.resolve(msg);
  }

  /** True where a hardware WebGL 2 is there (then the WebGL backend is worth its 0.4 MB). */
  function hardwareWebGL() {
    try {
      const gl = document.createElement('canvas').getContext('webgl2');
      if (!gl) return false;
      const ext = gl.getExtension('WEBGL_debug_renderer_info');
      const renderer = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
      return !/swiftshader|llvmpipe|software|basic render/i.test(renderer);
    } catch {
      return false;
    }
  }

  /** Loads vendor/tfjs-webgl.js (a plain script: works from file://) when WebGL can run. */
  function webglSource() {
    const wanted = params.get('backend') ? params.get('backend') === 'webgl' : hardwareWebGL();
    if (!wanted) return Promise.resolve('');
    return new Promise((resolve) => {
      const s = document.createElement('script');
      s.src = 'vendor/tfjs-webgl.js';
      s.onload = () => resolve(self.TFJS_WEBGL_SOURCE || '');
      s.onerror = () => resolve('');
      document.head.append(s);
    });
  }

  async function startWorker() {
    if (!self.TFJS_SOURCE || !MODEL || typeof tfmelanomaWorker !== 'function') {
      throw new Error('the page is incomplete: vendor/tfjs-bundle.js, worker.js or the model script did not load');
    }
    const webgl = await webglSource();
    const source = `${self.TFJS_SOURCE}\n;${webgl}\n;(${tfmelanomaWorker.toString()})();\n`;
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    worker = new Worker(url);
    worker.onmessage = onWorkerMessage;
    worker.onerror = (e) => showError(`The analysis worker failed: ${e.message || 'unknown error'}`);
    const flags = {};
    if (params.get('simd') === '0') flags.simd = false;
    return call({
      type: 'init', meta, modelJson: MODEL.modelJson, weights: MODEL.weights,
      wasm: self.TFJS_WASM, backend: params.get('backend') || null, flags,
    });
  }

  function showError(text, kind) {
    const box = $('message');
    box.textContent = text;
    box.dataset.kind = kind || 'internal';
    box.hidden = false;
  }

  function addNote(text, kind) {
    const li = document.createElement('li');
    li.textContent = text;
    li.dataset.kind = kind;
    $('notes').append(li);
  }

  function clearMessages() {
    $('message').hidden = true;
    $('message').textContent = '';
    $('notes').replaceChildren();
    $('gate').hidden = true;
    $('empty').hidden = true;
  }

  const pct = (p) => `${(100 * p).toFixed(1)} %`;

  /** Draws the CAM (logit-difference map, worker.js) over the preview, red where it raised
   * the melanoma score; scaled to the map's own largest absolute value. */
  function drawHeatmap(cam, shape) {
    const canvas = $('heatmap');
    const [h, w] = shape;
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d');
    const img = ctx.createImageData(w, h);
    const mean = cam.reduce((a, b) => a + b, 0) / cam.length;
    let peak = 1e-6;
    for (const v of cam) peak = Math.max(peak, Math.abs(v - mean));
    for (let i = 0; i < cam.length; i++) {
      const t = (cam[i] - mean) / peak; // -1 .. 1
      img.data[4 * i] = t > 0 ? 230 : 40;
      img.data[4 * i + 1] = 40;
      img.data[4 * i + 2] = t > 0 ? 40 : 230;
      img.data[4 * i + 3] = Math.round(170 * Math.abs(t));
    }
    ctx.putImageData(img, 0, 0);
  }

  function showHeatmap() {
    $('heatmap').hidden = !($('show-heatmap').checked && lastCam);
  }

  function render(result, decision, name) {
    $('result').hidden = false;
    $('result-extra').hidden = false;
    $('result').dataset.decision = decision.decision;
    $('decision').textContent = LABELS[decision.decision] || decision.decision;
    $('decision').className = `decision ${decision.decision}`;
    $('advice').textContent = ADVICE[decision.decision] || '';
    $('pmel').textContent = pct(decision.pMelanoma);
    const [lo, hi] = TfmDecision.uncertainBand(meta);
    $('band').style.left = `${100 * lo}%`;
    $('band').style.width = `${100 * (hi - lo)}%`;
    $('band-label').textContent = `uncertain ${Math.round(100 * lo)}–${Math.round(100 * hi)} %`;
    $('marker').style.left = `${100 * decision.pMelanoma}%`;
    $('scale').setAttribute('aria-label', `Melanoma score ${pct(decision.pMelanoma)} on a scale from 0 to 100 %; the uncertain band is ${Math.round(100 * lo)} to ${Math.round(100 * hi)} %`);
    $('timing').textContent = `Time: ${result.inferenceMs.toFixed(1)} ms inference, ${result.decodeMs.toFixed(1)} ms decoding.`;
    $('entropy').textContent = `Raw probability ${pct(decision.probs[meta.class_names.indexOf(meta.positive_class)])}; normalised entropy ${decision.entropy.toFixed(3)} (uncertain above ${decision.threshold.toFixed(2)}).`;
    $('filename').textContent = `Image: ${name} (${result.width} × ${result.height} px).`;
    $('result').dataset.probs = JSON.stringify(result.probs);
    lastCam = result.cam;
    $('result').dataset.cam = result.cam ? JSON.stringify({ shape: result.camShape, values: result.cam }) : '';
    if (result.cam) drawHeatmap(result.cam, result.camShape);
    showHeatmap();
  }

  function renderGate(result) {
    $('result').hidden = true;
    $('result-extra').hidden = true;
    const list = $('gate-reasons');
    list.replaceChildren();
    for (const r of result.gate.reasons) {
      const li = document.createElement('li');
      li.textContent = r.text;
      li.dataset.kind = r.kind;
      list.append(li);
    }
    $('gate').dataset.reasons = JSON.stringify(result.gate.reasons.map((r) => r.kind));
    $('gate').dataset.probs = JSON.stringify(result.probs);
    $('gate').hidden = false;
  }

  /** Analyses one image blob; resolves to {result, decision} (decision null when the gate
   * refused the image). Exposed for the tests. */
  function analyse(blob, name) {
    const run = async () => {
      await ready;
      self.tfmelanoma.last = null;
      clearMessages();
      $('busy').hidden = false;
      if ($('preview').src) URL.revokeObjectURL($('preview').src);
      $('preview').src = URL.createObjectURL(blob);
      try {
        const result = await call({ type: 'predict', blob, name });
        self.tfmelanoma.last = result; // for the tests (gate statistics)
        for (const note of result.notes) addNote(note.text, note.kind);
        if (!result.gate.ok) {
          renderGate(result);
          return { result, decision: null };
        }
        const decision = TfmDecision.decide(result.probs, meta);
        render(result, decision, name);
        return { result, decision };
      } catch (err) {
        $('result').hidden = true;
        $('result-extra').hidden = true;
        showError(err.message, err.kind);
        throw err;
      } finally {
        $('busy').hidden = true;
        // one column (phones): the answer is below the inputs, so bring it into view
        if (matchMedia('(max-width: 700px)').matches) $('output-h').scrollIntoView({ block: 'start' });
        analysed += 1;
        document.body.dataset.analysed = String(analysed);
      }
    };
    const p = queue.then(run, run);
    queue = p.catch(() => {});
    return p;
  }

  /** One photo at a time: analyses the first file and says so when there were more. */
  function analyseFiles(files) {
    const list = [...(files || [])];
    if (!list.length) return;
    analyse(list[0], list[0].name)
      .catch(() => {})
      .then(() => {
        if (list.length > 1) {
          addNote(`${list.length} files were given; this page analyses one photo at a time, so only “${list[0].name}” was analysed. Add the others one by one.`, 'multiple');
        }
      });
  }

  function b64ToBlob(b64, type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Blob([bytes], { type });
  }

  function buildGallery() {
    const items = self.TFMELANOMA_GALLERY || [];
    for (const item of items) {
      const blob = b64ToBlob(item.jpeg, 'image/jpeg');
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'thumb';
      btn.dataset.id = item.id;
      const img = document.createElement('img');
      img.src = URL.createObjectURL(blob);
      img.alt = ''; // the caption names the sample: read once
      const cap = document.createElement('span');
      cap.textContent = `${item.id} · ${item.diagnosis || item.benign_malignant}`;
      btn.append(img, cap);
      btn.addEventListener('click', () => analyse(blob, `${item.id}.jpg`).catch(() => {}));
      $('gallery').append(btn);
    }
  }

  let stream = null;

  function stopCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    $('camera').srcObject = null;
    $('camera-box').hidden = true;
    $('snap').hidden = true;
    $('stop').hidden = true;
    $('camera-btn').hidden = false;
  }

  async function startCamera() {
    const video = $('camera');
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
      video.srcObject = stream;
      $('camera-box').hidden = false;
      $('snap').hidden = false;
      $('stop').hidden = false;
      $('camera-btn').hidden = true;
      await video.play();
    } catch (err) {
      stopCamera();
      showError(`The camera is not available here (${err.name || err.message}). Choose a photo file instead.`, 'camera');
    }
  }

  function snap() {
    const video = $('camera');
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    stopCamera(); // the photo is taken: the camera goes off
    canvas.toBlob((blob) => blob && analyse(blob, 'camera.png').catch(() => {}), 'image/png');
  }

  function wireInputs() {
    $('file').addEventListener('change', (e) => {
      analyseFiles(e.target.files);
      e.target.value = '';
    });
    // The whole page is a drop target: a file dropped anywhere must not navigate away.
    const drop = $('drop');
    document.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    document.addEventListener('dragleave', (e) => {
      if (!e.relatedTarget) drop.classList.remove('over');
    });
    document.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      analyseFiles(e.dataTransfer && e.dataTransfer.files);
    });
    $('camera-btn').addEventListener('click', startCamera);
    $('snap').addEventListener('click', snap);
    $('stop').addEventListener('click', stopCamera);
    $('show-heatmap').addEventListener('change', showHeatmap);
  }

  let ready;
  try {
    ready = startWorker();
  } catch (err) {
    ready = Promise.reject(err);
  }
  $('model-name').textContent = meta ? `${meta.name} · ${meta.model_version}` : 'missing';
  ready.then(
    (info) => {
      const d = info.details || {};
      const extra = info.backend === 'wasm' ? ` (SIMD ${d.simd ? 'on' : 'off'})` : '';
      $('backend').textContent = `${info.backend}${extra}`;
      $('backend').title = info.skipped.length ? `not used: ${info.skipped.join('; ')}` : '';
      $('load-time').textContent = `${info.loadMs.toFixed(0)} ms`;
      document.body.dataset.ready = 'true';
    },
    (err) => {
      $('backend').textContent = 'failed';
      showError(`The model could not be loaded: ${err.message}`);
      document.body.dataset.ready = 'error';
    },
  );
  buildGallery();
  wireInputs();
  self.tfmelanoma = {
    ready,
    analyse,
    meta,
    stopCamera,
    last: null,
    memory: () => ready.then(() => call({ type: 'memory' })),
  };
})();
