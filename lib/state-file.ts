/**
 * Saved sequence states (sequence.saveState / model.loadSequence / chat.saveToFile): reading a file's
 * header without loading it. The format is native/engine/state_file.h's.
 */
import { InvalidArgumentError, fromNative } from './errors';
import { native } from './native';

/** What a saved state file holds, from its header (checked: format, version, sizes; not the checksum). */
export interface StateFileInfo {
  /** Weights fingerprint of the model that saved it (compare with `model.info.fingerprint`). */
  model: string;
  /** Its layer pattern (M = Mamba2, * = attention, - = MLP). */
  layerPattern: string;
  /** Tokens the sequence had absorbed. */
  tokens: number;
  /** The saved sequence's context size (loadSequence's default). */
  contextSize: number;
  /** The string given to saveState (chat session files hold the conversation here). */
  meta: string;
  /** The file's size. */
  bytes: number;
}

/** Reads a saved state's header; StateFileError when the file is missing or not a valid state file. */
export async function inspectStateFile(path: string): Promise<StateFileInfo> {
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('inspectStateFile: path must be a non-empty string');
  try {
    const h = await native().inspectStateFile(path);
    return { model: h.model, layerPattern: h.pattern, tokens: h.length, contextSize: h.contextSize, meta: h.meta, bytes: h.fileBytes };
  } catch (err) {
    throw fromNative(err);
  }
}
