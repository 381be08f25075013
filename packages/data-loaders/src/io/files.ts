import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { DataError } from "@mdrec/core";

/** Whether `path` is read through gunzip: `"auto"` decides by the `.gz` extension. */
export type Compression = "auto" | "gzip" | "none";

/** Throws `DataError` unless `path` names a readable regular file. */
export async function assertReadableFile(path: string): Promise<void> {
  if (typeof path !== "string" || path.length === 0) {
    throw new DataError(`file path must be a non-empty string, received ${JSON.stringify(path)}`);
  }
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new DataError(`file "${path}" does not exist`, { cause: error });
    throw new DataError(`file "${path}" cannot be read (${code ?? String(error)})`, { cause: error });
  }
  if (info.isDirectory()) throw new DataError(`"${path}" is a directory, expected a data file`);
  if (!info.isFile()) throw new DataError(`"${path}" is not a regular file`);
}

/** Whether `path` is gzip-compressed under `compression`. */
export function isGzip(path: string, compression: Compression = "auto"): boolean {
  return compression === "gzip" || (compression === "auto" && path.toLowerCase().endsWith(".gz"));
}

/**
 * The bytes of a file as a stream of chunks, gunzipped when `.gz` (or `compression: "gzip"`).
 * Memory stays at one chunk. A truncated or corrupt gzip stream raises `DataError` naming the file.
 */
export async function* readFileBytes(
  path: string,
  options: { compression?: Compression; chunkBytes?: number } = {},
): AsyncGenerator<Buffer> {
  await assertReadableFile(path);
  const gzip = isGzip(path, options.compression);
  const highWaterMark = options.chunkBytes ?? 1 << 16;
  const file = createReadStream(path, { highWaterMark });
  if (!gzip) {
    try {
      for await (const chunk of file) yield chunk as Buffer;
    } catch (error) {
      throw new DataError(`file "${path}" could not be read: ${(error as Error).message}`, { cause: error });
    }
    return;
  }
  const gunzip = createGunzip({ chunkSize: highWaterMark });
  file.on("error", (error) => gunzip.destroy(error));
  file.pipe(gunzip);
  let bytes = 0;
  try {
    for await (const chunk of gunzip) {
      bytes += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  } catch (error) {
    const reason = (error as Error).message;
    throw new DataError(
      `file "${path}" is a truncated or corrupt gzip file (${reason}) after ${bytes} decompressed bytes`,
      { cause: error },
    );
  } finally {
    file.destroy();
    gunzip.destroy();
  }
}
