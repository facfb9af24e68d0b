/**
 * Minimal safetensors reading/writing for tests that build corrupted or custom
 * checkpoints. Independent of the native loader on purpose.
 */
import * as fs from 'node:fs';

export interface StTensor {
  dtype: string;
  shape: number[];
  data: Buffer;
}

export function readSafetensors(file: string): Map<string, StTensor> {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = new Map<string, StTensor>();
  for (const [name, v] of Object.entries<any>(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = v.data_offsets;
    out.set(name, { dtype: v.dtype, shape: v.shape, data: Buffer.from(buf.subarray(8 + n + b, 8 + n + e)) });
  }
  return out;
}

/** Serialises tensors; `patchHeader` may edit the header object before it is written. */
export function encodeSafetensors(tensors: Map<string, StTensor>, patchHeader?: (h: any) => void): Buffer {
  const header: any = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  patchHeader?.(header);
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...[...tensors.values()].map((t) => t.data)]);
}
