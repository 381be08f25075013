// Every test file starts on the deterministic `cpu` backend; wasm cross-checks switch explicitly.
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";

await tf.setBackend("cpu");
await tf.ready();
// The cpu backend prints a "use tfjs-node" banner on first use; initBackend silences it the same way.
const cpuBackend = tf.findBackend("cpu") as { firstUse?: boolean } | null;
if (cpuBackend) cpuBackend.firstUse = false;
// Test workers run side by side on few cores: one BLAS thread each, or their threads compete.
process.env.MDREC_BLAS_THREADS ??= "1";
