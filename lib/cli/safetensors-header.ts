/**
 * Reads only the JSON headers of a model's safetensors files (8-byte length +
 * header; the weights are never read), to count parameters and weight bytes of
 * a checkpoint of any size in milliseconds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export interface TensorHeader {
  name: string;
  dtype: string;
  shape: number[];
  /** Bytes of data, from data_offsets. */
  bytes: number;
  file: string;
}

/** The checkpoint's safetensors files: the shards named by model.safetensors.index.json, else every *.safetensors. */
export function safetensorsFiles(dir: string): string[] {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    const map = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {};
    return [...new Set(Object.values(map))].sort().map((f) => path.join(dir, f));
  }
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort()
    .map((f) => path.join(dir, f));
}

export function readSafetensorsHeader(file: string): TensorHeader[] {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    if (fs.readSync(fd, len, 0, 8, 0) !== 8) throw new Error(`${file}: too short for a safetensors file`);
    const n = Number(len.readBigUInt64LE(0));
    if (n <= 0 || n > 100 * 1024 * 1024) throw new Error(`${file}: implausible safetensors header length ${n}`);
    const buf = Buffer.alloc(n);
    if (fs.readSync(fd, buf, 0, n, 8) !== n) throw new Error(`${file}: truncated safetensors header`);
    const header = JSON.parse(buf.toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    return Object.entries(header)
      .filter(([name]) => name !== '__metadata__')
      .map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, bytes: t.data_offsets[1] - t.data_offsets[0], file }));
  } finally {
    fs.closeSync(fd);
  }
}

export interface WeightSummary {
  files: string[];
  tensors: number;
  parameters: number;
  bytes: number;
  /** Parameters per dtype, e.g. { BF16: 8.9e9 }. */
  dtypes: Record<string, number>;
}

export function summarizeWeights(dir: string): WeightSummary {
  const files = safetensorsFiles(dir);
  if (files.length === 0) throw new Error(`${dir}: no .safetensors files`);
  const summary: WeightSummary = { files: files.map((f) => path.basename(f)), tensors: 0, parameters: 0, bytes: 0, dtypes: {} };
  for (const file of files) {
    for (const t of readSafetensorsHeader(file)) {
      const numel = t.shape.reduce((a, b) => a * b, 1);
      summary.tensors++;
      summary.parameters += numel;
      summary.bytes += t.bytes;
      summary.dtypes[t.dtype] = (summary.dtypes[t.dtype] ?? 0) + numel;
      const per = DTYPE_BYTES[t.dtype];
      if (per !== undefined && per * numel !== t.bytes)
        throw new Error(`${path.basename(file)}: tensor ${t.name} has ${t.bytes} bytes, expected ${per * numel} for ${t.dtype}${JSON.stringify(t.shape)}`);
    }
  }
  return summary;
}
