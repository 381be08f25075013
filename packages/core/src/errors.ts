/**
 * Base class of the errors raised by every mdrec package. Each carries a stable `code` so
 * callers can branch on the kind of failure, and a message that says what was expected, what
 * was received and where (argument, config key, file:line).
 *
 * @example
 * try { new Mlp({ units: [] }); } catch (error) { if (error instanceof MdrecError) console.log(error.code); }
 */
export class MdrecError extends Error {
  /** Stable machine-readable error code, e.g. `"INVALID_ARGUMENT"`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An argument or config value is out of its allowed range or of the wrong type. */
export class ConfigError extends MdrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_ARGUMENT", message, options);
  }
}

/** A tensor passed to a block has the wrong rank, shape or dtype. */
export class ShapeError extends MdrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_SHAPE", message, options);
  }
}

/** Input data (a file, a row, a field value) is malformed. */
export class DataError extends MdrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("INVALID_DATA", message, options);
  }
}

/** A requested TensorFlow.js backend could not be loaded. */
export class BackendError extends MdrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("BACKEND_UNAVAILABLE", message, options);
  }
}

/** A checkpoint or saved model cannot be written or read. */
export class CheckpointError extends MdrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CHECKPOINT", message, options);
  }
}

/** Training diverged (NaN or infinite loss) or another run-time failure. */
export class TrainingError extends MdrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("TRAINING", message, options);
  }
}
