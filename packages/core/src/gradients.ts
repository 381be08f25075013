// tfjs-core registers kernels but no gradients; `@tensorflow/tfjs` (the union package) does
// it on import. We depend on tfjs-core only, so we register them here. The build bundles this
// module (tsup noExternal) because tfjs-core ships it as ESM inside a CommonJS package; the
// registrations land in tfjs's global kernel registry, which every copy of tfjs-core shares.
import "@tensorflow/tfjs-core/dist/register_all_gradients";
