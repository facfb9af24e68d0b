/**
 * A tiny NemotronH with RANDOM weights whose vocabulary matches the generated
 * test tokenizer, plus that tokenizer and the model's chat template, in one
 * directory: enough to run chat sessions end to end on the CPU in tests.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { loadModel, type LoadModelOptions, type Model } from '../../lib';
import { sharedModelDir, writeTestTokenizer, type TestTokenizerInfo } from './test-tokenizer';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { writeRandomModel } = require('../../scripts/random-model.js');

export interface ChatModelDir {
  dir: string;
  tokenizer: TestTokenizerInfo;
  cleanup(): void;
}

export function makeChatModelDir(): ChatModelDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-chat-'));
  const tokenizer = writeTestTokenizer(dir);
  writeRandomModel(
    dir,
    {
      hidden_size: 64,
      hybrid_override_pattern: 'M*M-',
      vocab_size: tokenizer.vocabSize,
      mamba_num_heads: 4,
      mamba_head_dim: 16,
      n_groups: 2,
      ssm_state_size: 16,
      conv_kernel: 4,
      chunk_size: 16,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 16,
      intermediate_size: 128,
      max_position_embeddings: 4096,
    },
    { seed: 7 },
  );
  return { dir, tokenizer, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The chat model of a describeWithChatModel block: set before its tests run. */
export interface ChatModelContext {
  md: ChatModelDir;
  model: Model;
}

/**
 * describe() over a chat model (makeChatModelDir) loaded on the CPU with `options` before the block's tests and
 * disposed after them. Skipped, saying so once (`what` names the tests), where ../shared has no chat template
 * (a user's clone).
 */
export function describeWithChatModel(
  title: string,
  what: string,
  options: Omit<LoadModelOptions, 'device'>,
  body: (ctx: ChatModelContext) => void,
): void {
  const ctx = {} as ChatModelContext;
  if (!sharedModelDir()) {
    console.log(`skipping ${what}: ../shared/models/nemotron-nano-9b-v2 (chat template) not found`);
    describe.skip(title, () => body(ctx));
    return;
  }
  describe(title, () => {
    beforeAll(async () => {
      ctx.md = makeChatModelDir();
      ctx.model = await loadModel(ctx.md.dir, { device: 'cpu', ...options });
    });
    afterAll(() => {
      ctx.model?.dispose();
      ctx.md?.cleanup();
    });
    body(ctx);
  });
}
