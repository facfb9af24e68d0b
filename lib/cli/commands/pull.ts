/** `nemotron pull REPO [--dir DIR] [--revision main]`: downloads a Hugging Face model repository. */
import * as path from 'node:path';

import { parseOrExit } from '../args';
import { downloadWithRetries, HubError, hubOptionsFromEnv, listRepoFiles } from '../hf-download';
import { formatBytes, ProgressBar } from '../progress';

const spec = {
  name: 'pull',
  positionals: 'REPO',
  summary:
    'Downloads a Hugging Face model repository (e.g. nvidia/NVIDIA-Nemotron-Nano-9B-v2) into a directory.\n' +
    'Interrupted downloads resume; sizes and LFS sha256 hashes are checked. Environment: HF_TOKEN (gated or\n' +
    'private repositories), HF_ENDPOINT (a mirror; default https://huggingface.co).',
  options: {
    dir: { kind: 'string', value: 'DIR', help: 'target directory (default: ./<repository name>)' },
    revision: { kind: 'string', value: 'REV', help: 'branch, tag or commit (default: main)' },
    retries: { kind: 'number', integer: true, min: 0, help: 'retries per file after a network failure (default 3)' },
  },
} as const;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseOrExit(spec, argv);
  if (typeof parsed === 'number') return parsed;
  const [repo, ...extra] = parsed.positionals;
  if (!repo || extra.length > 0 || !/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) {
    console.error(`nemotron pull: expected one repository name like "owner/name"${repo ? `, got "${[repo, ...extra].join(' ')}"` : ''}`);
    return 2;
  }
  const revision = parsed.options.revision ?? 'main';
  const dir = path.resolve(parsed.options.dir ?? repo.split('/').pop()!);
  const hub = hubOptionsFromEnv(repo, revision);

  try {
    const files = await listRepoFiles(hub);
    const total = files.reduce((a, f) => a + (f.size ?? 0), 0);
    console.error(`${repo}@${revision}: ${files.length} files, ${formatBytes(total)} → ${dir}`);
    const bar = new ProgressBar({ label: 'pull', total });
    let before = 0; // bytes of the files already finished
    const counts = { skipped: 0, downloaded: 0, resumed: 0 };
    for (const file of files) {
      const outcome = await downloadWithRetries(
        hub,
        file,
        dir,
        {
          onBytes: (n) => bar.update(before + n, file.path),
          onResume: (from) => bar.log(`${file.path}: resuming at ${formatBytes(from)}`),
          onRetry: (err, attempt) => bar.log(`${err.message} — retry ${attempt}`),
        },
        parsed.options.retries ?? 3,
      );
      counts[outcome]++;
      if (outcome !== 'skipped') bar.log(`${file.path}: ${outcome} (${file.size !== undefined ? formatBytes(file.size) : 'size unknown'}${file.sha256 ? ', sha256 ok' : ''})`);
      before += file.size ?? 0;
    }
    bar.finish(
      `done: ${counts.downloaded} downloaded, ${counts.resumed} resumed, ${counts.skipped} already complete — ${dir}`,
    );
    return 0;
  } catch (err) {
    if (err instanceof HubError) {
      console.error(`\nnemotron pull: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
