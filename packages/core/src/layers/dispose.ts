import type { layers } from "@tensorflow/tfjs-layers";

type DisposeResult = ReturnType<layers.Layer["dispose"]>;

/**
 * tfjs's `Layer.dispose` throws for a layer that was never built, and for one built without
 * `apply` (as `loadLayer` and composite parents do), because its reference count starts at
 * the first `apply`. mdrec layers dispose their weights in both cases.
 */
export function disposeLayerWeights(layer: layers.Layer, disposeBuilt: () => DisposeResult): DisposeResult {
  if (!layer.built) return { refCountAfterDispose: 0, numDisposedVariables: 0 };
  const counted = layer as unknown as { _refCount: number | null };
  if (counted._refCount === null) counted._refCount = 1;
  return disposeBuilt();
}
