// Runs a TF.js graph model in Node (tfjs-core + converter + the pure-JS CPU backend) on raw
// float32 pixels written by Python, so `python -m export.tfjs` can check Keras/TF.js parity.
//
//   node webdemo/tools/predict_node.mjs MODEL_DIR INPUT.f32 N,H,W,3
//
// Prints {"backend", "probs": [[...], ...], "numTensorsBefore", "numTensorsAfter"} as JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadGraphModel } from '@tensorflow/tfjs-converter';

const [modelDir, inputPath, shapeArg] = process.argv.slice(2);
if (!modelDir || !inputPath || !shapeArg) {
  console.error('usage: predict_node.mjs MODEL_DIR INPUT.f32 N,H,W,3');
  process.exit(2);
}
const modelJson = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8'));
const shards = modelJson.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(modelDir, p))));
const weights = Buffer.concat(shards);
const artifacts = {
  modelTopology: modelJson.modelTopology,
  format: modelJson.format,
  generatedBy: modelJson.generatedBy,
  convertedBy: modelJson.convertedBy,
  signature: modelJson.signature,
  userDefinedMetadata: modelJson.userDefinedMetadata,
  modelInitializer: modelJson.modelInitializer,
  weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
  weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
};

await tf.setBackend('cpu');
await tf.ready();
const model = await loadGraphModel({ load: async () => artifacts });
const shape = shapeArg.split(',').map(Number);
const raw = readFileSync(inputPath);
const pixels = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
if (pixels.length !== shape.reduce((a, b) => a * b, 1)) {
  console.error(`input ${inputPath} holds ${pixels.length} floats, shape ${shape} needs more or fewer`);
  process.exit(2);
}
const before = tf.memory().numTensors;
const out = tf.tidy(() => model.predict(tf.tensor(pixels, shape, 'float32')));
const probs = await out.array();
out.dispose();
console.log(JSON.stringify({
  backend: tf.getBackend(),
  probs,
  numTensorsBefore: before,
  numTensorsAfter: tf.memory().numTensors,
}));
