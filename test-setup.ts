// Every test file starts on the deterministic `cpu` backend; wasm cross-checks switch explicitly.
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";

await tf.setBackend("cpu");
await tf.ready();
