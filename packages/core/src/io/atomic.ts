import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CheckpointError } from "../errors.js";

/**
 * Writes `data` to `path` atomically: a temp file beside it, then `rename`. A crash or a full
 * disk leaves either the old file or the new one, never a half-written file.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const directory = dirname(path);
  await mkdir(directory, { recursive: true }).catch((error: unknown) => {
    throw new CheckpointError(`Cannot create directory ${directory}: ${(error as Error).message}`, { cause: error });
  });
  const temporary = join(directory, `.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await writeFile(temporary, data);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new CheckpointError(`Cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}
