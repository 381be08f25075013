import type { layers } from "@tensorflow/tfjs-layers";

type DisposeResult = ReturnType<layers.Layer["dispose"]>;

/**
 * Lets an mdrec layer dispose its weights when tfjs's `Layer.dispose` would refuse: a layer
 * never built, or built without `apply` (by `loadLayer` or by a composite parent), because tfjs
 * starts the reference count at the first `apply`. Use as
 * `override dispose() { return disposeLayerWeights(this, () => super.dispose()); }`.
 * A composite layer whose `weights` are its children's frees them all this way.
 */
export function disposeLayerWeights(layer: layers.Layer, disposeBuilt: () => DisposeResult): DisposeResult {
  if (!layer.built) return { refCountAfterDispose: 0, numDisposedVariables: 0 };
  const counted = layer as unknown as { _refCount: number | null };
  if (counted._refCount === null) counted._refCount = 1;
  return disposeBuilt();
}
