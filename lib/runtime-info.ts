import * as path from 'node:path';
import { native, nativeBindingPath, packageRoot, type NativeRuntimeInfo } from './native';

export interface RuntimeInfo {
  /** The .node file that was loaded (a prebuild or the local build). */
  binding: string | undefined;
  /**
   * Where that file came from: 'prebuild' = shipped in the package (prebuilds/<platform>-<arch>/),
   * 'local-build' = compiled on this machine (build/Release: a source install or `npm run build:native`).
   */
  source: 'prebuild' | 'local-build';
  cpu: NativeRuntimeInfo['cpu'];
  /** CUDA in this binary and on this machine: compiled archs, driver/runtime versions, devices, or why not usable. */
  cuda: NativeRuntimeInfo['cuda'];
}

/** node-gyp-build loads shipped binaries from <package root>/prebuilds/; anything else was built here. */
function bindingSource(file: string | undefined): RuntimeInfo['source'] {
  if (!file) return 'local-build';
  const rel = path.relative(packageRoot(), file);
  return rel.split(path.sep)[0] === 'prebuilds' ? 'prebuild' : 'local-build';
}

/** What the loaded native binary can do on this machine. */
export function getRuntimeInfo(): RuntimeInfo {
  const info = native().runtimeInfo();
  const binding = nativeBindingPath();
  return { binding, source: bindingSource(binding), ...info };
}
