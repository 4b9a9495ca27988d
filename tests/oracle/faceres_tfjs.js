'use strict';
// The test oracle for cluster/vision/faceres.py: runs the vendored faceres TF.js graph with
// @tensorflow/tfjs itself (pure JavaScript CPU backend, no native tfjs-node) on the same chips.
//
//   node faceres_tfjs.js MODEL_JSON CHIPS_U8 COUNT OUTPUT_F32
//
// CHIPS_U8: COUNT x 224 x 224 x 3 uint8 RGB chips, raw. OUTPUT_F32: COUNT x 1024 float32
// little-endian, the graph's `global_pooling/Mean`. The preprocessing is written here
// independently of the Python code (RGB reversed to BGR, minus the Keras "caffe" means), so the
// comparison covers it as well as the network.

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

const SIZE = 224;
const OUTPUT_NODE = 'global_pooling/Mean';
const MEAN_BGR = [103.939, 116.779, 123.68];

// Model files are read from disk and handed to tfjs through an in-memory IOHandler, because the
// pure-JS package's own loaders fetch over HTTP.
async function loadModel(modelJson) {
  const document = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const folder = path.dirname(modelJson);
  const weightSpecs = [];
  const shards = [];
  for (const group of document.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) {
      shards.push(fs.readFileSync(path.join(folder, shard)));
    }
  }
  const bytes = Buffer.concat(shards);
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: document.modelTopology,
      format: document.format,
      generatedBy: document.generatedBy,
      convertedBy: document.convertedBy,
      weightSpecs,
      weightData,
    }),
  );
}

async function main() {
  const [modelJson, chipsPath, countText, outputPath] = process.argv.slice(2);
  if (!outputPath) {
    throw new Error('usage: node faceres_tfjs.js MODEL_JSON CHIPS_U8 COUNT OUTPUT_F32');
  }
  const count = Number.parseInt(countText, 10);
  const chips = fs.readFileSync(chipsPath);
  if (chips.length !== count * SIZE * SIZE * 3) {
    throw new Error(`${chipsPath} holds ${chips.length} bytes, expected ${count} chips of ${SIZE}x${SIZE}x3`);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  const model = await loadModel(modelJson);
  const started = Date.now();
  const output = tf.tidy(() => {
    const rgb = tf.tensor4d(Float32Array.from(chips), [count, SIZE, SIZE, 3], 'float32');
    const bgr = tf.sub(tf.reverse(rgb, -1), tf.tensor1d(MEAN_BGR, 'float32'));
    return model.execute(bgr, OUTPUT_NODE);
  });
  const values = await output.data();
  if (values.length !== count * 1024) {
    throw new Error(`${OUTPUT_NODE} gave ${values.length} values, expected ${count} x 1024`);
  }
  fs.writeFileSync(outputPath, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  process.stderr.write(
    `tfjs ${tf.version.tfjs} backend ${tf.getBackend()}: ${count} chips in ${Date.now() - started} ms\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
