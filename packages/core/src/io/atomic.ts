import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CheckpointError } from "../errors.js";

/**
 * Writes `data` to `path` atomically: a temp file beside it, flushed to disk, then `rename`
 * over `path`. A crash, a full disk or a failing write leaves either the old file or the new
 * one, never a half-written file, and no temp file. Creates missing parent directories.
 * Throws {@link CheckpointError} naming the path.
 *
 * @example await writeFileAtomic("./run/metrics.json", JSON.stringify(metrics));
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const directory = dirname(path);
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    throw new CheckpointError(`Cannot create directory ${directory}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const temporary = join(directory, `.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temporary, "w");
    try {
      await handle.writeFile(data);
      // Without the flush a power loss after the rename can leave an empty file under `path`.
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new CheckpointError(`Cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
  await syncDirectory(directory);
}

// Persists the rename itself. Directories cannot be opened for sync on every platform
// (Windows): there the rename is already as durable as the OS makes it.
async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort, see above
  }
}
