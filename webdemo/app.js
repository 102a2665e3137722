// The page: starts the inference worker once, feeds it photos (file, drop, camera, gallery) and
// shows P(melanoma), the entropy-based uncertainty and the decision. Nothing leaves the page.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const MODEL = self.TFMELANOMA_MODEL;
  const meta = MODEL && MODEL.meta;
  const LABELS = {
    melanoma: 'Melanoma suspected — see a doctor',
    non_melanoma: 'Non-melanoma (benign-looking)',
    uncertain: 'Uncertain — see a doctor',
  };

  let worker = null;
  let nextId = 1;
  const pending = new Map();
  let queue = Promise.resolve();
  let analysed = 0;

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

  function startWorker() {
    if (!self.TFJS_SOURCE || !MODEL || typeof tfmelanomaWorker !== 'function') {
      throw new Error('the page is incomplete: vendor/tfjs-bundle.js, worker.js or the model script did not load');
    }
    const source = `${self.TFJS_SOURCE}\n;(${tfmelanomaWorker.toString()})();\n`;
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    worker = new Worker(url);
    worker.onmessage = onWorkerMessage;
    worker.onerror = (e) => showError(`The analysis worker failed: ${e.message || 'unknown error'}`);
    const flags = {};
    if (params.get('simd') === '0') flags.simd = false;
    if (params.get('threads') === '0') flags.threads = false;
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

  function clearMessages() {
    $('message').hidden = true;
    $('message').textContent = '';
    $('notes').replaceChildren();
  }

  function render(result, decision, name) {
    $('result').hidden = false;
    $('result').dataset.decision = decision.decision;
    $('decision').textContent = LABELS[decision.decision] || decision.decision;
    $('decision').className = `decision ${decision.decision}`;
    $('pmel').textContent = `${(100 * decision.pMelanoma).toFixed(1)} %`;
    $('pmel-bar').value = decision.pMelanoma;
    $('entropy').textContent = `${decision.entropy.toFixed(3)} (uncertain above ${decision.threshold.toFixed(2)})`;
    $('timing').textContent = `${result.inferenceMs.toFixed(1)} ms inference, ${result.decodeMs.toFixed(1)} ms decoding`;
    $('filename').textContent = `${name} (${result.width} × ${result.height} px)`;
    $('result').dataset.probs = JSON.stringify(result.probs);
    for (const note of result.notes) {
      const li = document.createElement('li');
      li.textContent = note.text;
      li.dataset.kind = note.kind;
      $('notes').append(li);
    }
  }

  /** Analyses one image blob; resolves to {result, decision}. Exposed for the tests. */
  function analyse(blob, name) {
    const run = async () => {
      await ready;
      clearMessages();
      $('busy').hidden = false;
      if ($('preview').src) URL.revokeObjectURL($('preview').src);
      $('preview').src = URL.createObjectURL(blob);
      try {
        const result = await call({ type: 'predict', blob, name });
        const decision = TfmDecision.decide(result.probs, meta);
        render(result, decision, name);
        return { result, decision };
      } catch (err) {
        $('result').hidden = true;
        showError(err.message, err.kind);
        throw err;
      } finally {
        $('busy').hidden = true;
        analysed += 1;
        document.body.dataset.analysed = String(analysed);
      }
    };
    const p = queue.then(run, run);
    queue = p.catch(() => {});
    return p;
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
      btn.title = `${item.id} (${item.diagnosis || item.benign_malignant}) — CC0, ISIC Archive`;
      const img = document.createElement('img');
      img.src = URL.createObjectURL(blob);
      img.alt = `${item.id}, ${item.diagnosis}`;
      const cap = document.createElement('span');
      cap.textContent = `${item.id} · ${item.diagnosis || item.benign_malignant}`;
      btn.append(img, cap);
      btn.addEventListener('click', () => analyse(blob, `${item.id}.jpg`).catch(() => {}));
      $('gallery').append(btn);
    }
  }

  async function startCamera() {
    const video = $('camera');
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
      video.srcObject = stream;
      video.hidden = false;
      $('snap').hidden = false;
      await video.play();
    } catch (err) {
      showError(`The camera is not available here (${err.name || err.message}). Choose a photo file instead.`, 'camera');
    }
  }

  function snap() {
    const video = $('camera');
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    canvas.toBlob((blob) => blob && analyse(blob, 'camera.png').catch(() => {}), 'image/png');
  }

  function wireInputs() {
    $('file').addEventListener('change', (e) => {
      const f = e.target.files[0];
      if (f) analyse(f, f.name).catch(() => {});
      e.target.value = '';
    });
    const drop = $('drop');
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      const f = e.dataTransfer.files[0];
      if (f) analyse(f, f.name).catch(() => {});
    });
    $('camera-btn').addEventListener('click', startCamera);
    $('snap').addEventListener('click', snap);
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
      const extra = info.backend === 'wasm' ? ` (SIMD ${d.simd ? 'on' : 'off'}, threads ${d.threads ? 'on' : 'off'})` : '';
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
    memory: () => ready.then(() => call({ type: 'memory' })),
  };
})();
