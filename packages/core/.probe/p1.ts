import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { gatherRows, scatterAddRows, Mlp, FeatureEmbedding } from "../src/index.js";
await tf.setBackend("cpu");
const table = tf.variable(tf.randomNormal([5, 3]));
const idx = tf.tensor1d([0, 2, 2, 4], "int32");
const warm = () => { const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(gatherRows(table, idx))) as tf.Scalar, [table]); value.dispose(); tf.dispose(grads); };
warm();
let before = tf.memory().numTensors;
warm();
console.log("gatherRows variableGrads leak:", tf.memory().numTensors - before);
before = tf.memory().numTensors;
const g = tf.grad((t: tf.Tensor) => tf.sum(gatherRows(t as tf.Tensor2D, idx)))(table.read()); g.print(); g.dispose();
console.log("gatherRows grad leak:", tf.memory().numTensors - before);
// scatterAdd
const vals = tf.variable(tf.randomNormal([4, 3]));
const sw = () => { const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(scatterAddRows(vals, idx, 5))) as tf.Scalar, [vals]); value.dispose(); tf.dispose(grads); };
sw(); before = tf.memory().numTensors; sw();
console.log("scatterAddRows leak:", tf.memory().numTensors - before);
// scatterAddRows with idx created in tidy
before = tf.memory().numTensors;
tf.tidy(() => { const i2 = tf.tensor1d([1, 1, 0, 3], "int32"); const { value, grads } = tf.variableGrads(() => tf.sum(scatterAddRows(vals, i2, 5)) as tf.Scalar, [vals]); grads.forEach?.(()=>0); });
console.log("scatterAddRows tidy-indices leak:", tf.memory().numTensors - before);
// Mlp BN in tape
const mlp = new Mlp({ units: [4, 2], batchNorm: true, dropout: 0.5, seed: 1 });
const x = tf.randomNormal([6, 3]) as tf.Tensor2D;
mlp.forward(x, true).dispose();
const mw = () => { const { value, grads } = tf.variableGrads(() => tf.mean(mlp.forward(x, true)) as tf.Scalar, mlp.trainableWeights.map(w => (w as any).val)); value.dispose(); tf.dispose(grads); };
try { mw(); before = tf.memory().numTensors; mw(); console.log("mlp bn leak:", tf.memory().numTensors - before); } catch (e) { console.log("mlp bn err", (e as Error).message); }
console.log(mlp.weights.map(w => w.name + ":" + w.trainable));
// FeatureEmbedding
const fe = new FeatureEmbedding({ features: [{ kind: "categorical", name: "u", vocabularySize: 3 }, { kind: "numeric", name: "a", boundaries: [0, 1] }, {kind:"numeric", name:"b"}], embeddingDim: 2, seed: 3 });
const feats = { u: tf.tensor1d([0, 2], "int32"), a: tf.tensor1d([-1, 0.5]), b: tf.tensor1d([7, 8]) };
fe.embed(feats).print();
before = tf.memory().numTensors;
fe.embed(feats).dispose();
console.log("fe leak:", tf.memory().numTensors - before);
try { fe.embed({ ...feats, u: tf.tensor1d([0, 3], "int32") }); } catch (e) { console.log((e as Error).constructor.name, (e as Error).message); }
