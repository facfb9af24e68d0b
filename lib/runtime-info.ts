import { native, nativeBindingPath } from './native';

export interface RuntimeInfo {
  /** The .node file that was loaded (a prebuild or the local build). */
  binding: string | undefined;
  cpu: { avx2: boolean; fma: boolean; f16c: boolean };
  cuda: { compiled: boolean; available: boolean; reason: string };
}

/** What the loaded native binary can do on this machine. */
export function getRuntimeInfo(): RuntimeInfo {
  const info = native().runtimeInfo();
  return { binding: nativeBindingPath(), ...info };
}
