/**
 * Typed errors. Native failures carry a stable `code` (see native/common/error.h);
 * `fromNative` turns them into these classes so callers can use `instanceof`.
 */
export class NemotronError extends Error {
  readonly code: string;
  constructor(message: string, code = 'ERR_NEMOTRON', options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A model directory could not be loaded: missing/malformed files, bad config, wrong tensors. */
export class ModelLoadError extends NemotronError {}
/** An option or argument is invalid; the message names it. */
export class InvalidArgumentError extends NemotronError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_INVALID_ARGUMENT', options);
  }
}
/** A sequence would grow past its context size. */
export class ContextOverflowError extends NemotronError {
  constructor(message: string) {
    super(message, 'ERR_CONTEXT_OVERFLOW');
  }
}
/** The requested device (e.g. CUDA) is not usable on this machine or in this build. */
export class DeviceUnavailableError extends NemotronError {}
/** Host or GPU memory ran out. */
export class OutOfMemoryError extends NemotronError {}
/** The model or sequence was used after dispose(). */
export class DisposedError extends NemotronError {
  constructor(message: string) {
    super(message, 'ERR_DISPOSED');
  }
}

/**
 * A saved sequence state (seq.saveState / chat.saveToFile) cannot be used: the file is missing or unreadable,
 * truncated or corrupt (its checksum does not match), of an unknown format version, or saved by a model with
 * other weights or another layout. The message names the file and what is wrong.
 */
export class StateFileError extends NemotronError {
  constructor(message: string) {
    super(message, 'ERR_STATE_FILE');
  }
}

const byCode: Record<string, (message: string) => NemotronError> = {
  ERR_MODEL_FILE: (m) => new ModelLoadError(m, 'ERR_MODEL_FILE'),
  ERR_MODEL_CONFIG: (m) => new ModelLoadError(m, 'ERR_MODEL_CONFIG'),
  ERR_MODEL_WEIGHTS: (m) => new ModelLoadError(m, 'ERR_MODEL_WEIGHTS'),
  ERR_INVALID_ARGUMENT: (m) => new InvalidArgumentError(m),
  ERR_CONTEXT_OVERFLOW: (m) => new ContextOverflowError(m),
  ERR_DEVICE_UNAVAILABLE: (m) => new DeviceUnavailableError(m, 'ERR_DEVICE_UNAVAILABLE'),
  ERR_OUT_OF_MEMORY: (m) => new OutOfMemoryError(m, 'ERR_OUT_OF_MEMORY'),
  ERR_DISPOSED: (m) => new DisposedError(m),
  ERR_STATE_FILE: (m) => new StateFileError(m),
};

/** Converts an error thrown by the native addon into a typed error (others pass through). */
export function fromNative(err: unknown): unknown {
  if (err instanceof NemotronError) return err;
  // Duck-typed rather than `instanceof Error`: the addon creates errors in the
  // realm it was loaded in, which need not be the caller's (vm contexts, jest).
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e && typeof e === 'object' && typeof e.code === 'string' && typeof e.message === 'string') {
    const make = byCode[e.code];
    return make ? make(e.message) : new NemotronError(e.message, e.code);
  }
  return err;
}
