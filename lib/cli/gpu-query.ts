/**
 * GPU facts for `nemotron info`: the engine reports only whether CUDA is usable,
 * so names, driver, compute capability and free memory come from nvidia-smi when
 * it is installed (it ships with the NVIDIA driver).
 */
import { spawnSync } from 'node:child_process';

export interface GpuInfo {
  index: number;
  name: string;
  driver: string;
  computeCapability: string;
  memoryTotalBytes: number;
  memoryFreeBytes: number;
}

export function queryGpus(): { gpus: GpuInfo[]; note?: string } {
  const r = spawnSync(
    'nvidia-smi',
    ['--query-gpu=index,name,driver_version,compute_cap,memory.total,memory.free', '--format=csv,noheader,nounits'],
    { encoding: 'utf8', timeout: 10_000 },
  );
  if (r.error) return { gpus: [], note: 'nvidia-smi not found (no NVIDIA driver on this machine?)' };
  if (r.status !== 0) return { gpus: [], note: `nvidia-smi failed: ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
  const MiB = 1024 * 1024;
  const gpus = r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [index, name, driver, cc, total, free] = line.split(',').map((s) => s.trim());
      return {
        index: Number(index),
        name,
        driver,
        computeCapability: cc,
        memoryTotalBytes: Number(total) * MiB,
        memoryFreeBytes: Number(free) * MiB,
      };
    });
  return { gpus };
}
