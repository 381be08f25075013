import type { layers } from "@tensorflow/tfjs-layers";

/**
 * Disposes a layer owned by another layer or by a model.
 *
 * tfjs reference-counts a layer only when its first `apply()` builds it; a child that its
 * parent built directly in `build()` (the tfjs `Bidirectional` pattern, which loadLayer relies
 * on) has no count and `dispose()` refuses with "has not been used yet". Its variables are then
 * freed directly.
 */
export function disposeChildLayer(layer: layers.Layer): void {
  if (!layer.built) return;
  try {
    layer.dispose();
    return;
  } catch (error) {
    if (!(error instanceof Error) || !error.message.includes("has not been used yet")) throw error;
  }
  for (const weight of layer.weights) weight.dispose();
}
