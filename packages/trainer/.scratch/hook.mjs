export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const code = error?.code;
    if (
      specifier.startsWith(".") &&
      context.parentURL?.includes("/@tensorflow/") &&
      (code === "ERR_UNSUPPORTED_DIR_IMPORT" || code === "ERR_MODULE_NOT_FOUND")
    ) {
      return nextResolve(`${specifier}.js`, context);
    }
    throw error;
  }
}
