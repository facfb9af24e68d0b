/**
 * The published package, as a user gets it: `npm pack` the repo, install the tarball into
 * a fresh project whose PATH holds only node and npm (no cmake, no compiler, no make) with
 * install scripts on, then use it from there — require(), import(), a fixture model on CPU,
 * and the public types under tsc. Also: the tarball holds only what it should, the install
 * step explains itself when it cannot build, and a real source build from the tarball works.
 *
 * Uses the dist/ and build/Release that `npm test` has just built: the prebuild is refreshed
 * from build/Release (scripts/prebuild.js --from: copy + strip; same CMake Release flags) when
 * that is newer, so CI does not compile the addon twice.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fixturesDir } from './helpers/fixtures';
import { BUILD_TOOLS, cleanEnv, findOnPath, hiddenToolsBin, run, runOk } from './helpers/packaging-env';
import { CONSUMER_TS, GREEDY, IMPORT_PROBE, REQUIRE_PROBE } from './helpers/packaging-consumer';

const root = path.join(__dirname, '..');
const PREBUILD_DIR = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const LOCAL_BUILD = path.join(root, 'build', 'Release', 'nemotron_node.node');

/** What the tarball may hold: these prefixes and nothing else. */
const ALLOWED = [/^dist\/(cjs|esm)\//, /^bin\//, /^prebuilds\//, /^native\//, /^scripts\/install\.js$/, /^(CMakeLists\.txt|README\.md|LICENSE|package\.json)$/];
const FORBIDDEN = [/^native\/(tests|bench)\//, /\.map$/, /^test\//, /^build/, /^lib\//, /fixtures/, /\.demo-model/];
const REQUIRED = [
  'package.json',
  'README.md',
  'LICENSE',
  'CMakeLists.txt',
  'scripts/install.js',
  'dist/cjs/index.js',
  'dist/cjs/index.d.ts',
  'dist/esm/index.mjs',
  'dist/esm/index.d.mts',
  'bin/nemotron.js',
  'native/addon/module.cpp',
];
// Everything but the binary (JS, types, C++ sources, docs), unpacked.
const MAX_NON_BINARY_BYTES = 2 * 1024 * 1024;
// The packed tarball: a CPU-only binary is ~0.5 MB; with CUDA machine code for
// sm_80/86/89/90a + PTX the binary is ~17 MB and the tarball ~4.5 MB.
const MAX_TARBALL_BYTES = { cpu: 2 * 1024 * 1024, cuda: 10 * 1024 * 1024 };

let work: string;
let consumer: string;
let installed: string; // <consumer>/node_modules/nemotron-node
let hiddenEnv: NodeJS.ProcessEnv; // PATH = node + npm only
let pack: { filename: string; size: number; unpackedSize: number; files: { path: string; size: number }[] };
let installOut: string;

function prebuildFile(): string | undefined {
  if (!fs.existsSync(PREBUILD_DIR)) return undefined;
  const f = fs.readdirSync(PREBUILD_DIR).find((n) => n.endsWith('.node'));
  return f && path.join(PREBUILD_DIR, f);
}

/** Reuse a prebuild that is newer than the local build; else make one from it (or compile). */
function ensurePrebuild(): void {
  const existing = prebuildFile();
  const local = fs.existsSync(LOCAL_BUILD) ? fs.statSync(LOCAL_BUILD).mtimeMs : 0;
  if (existing && fs.statSync(existing).mtimeMs >= local) {
    console.log(`packaging: reusing ${path.relative(root, existing)}`);
    return;
  }
  const args = local ? ['scripts/prebuild.js', '--from', LOCAL_BUILD] : ['scripts/prebuild.js'];
  console.log(`packaging: node ${args.join(' ')}`);
  runOk(process.execPath, args, { cwd: root, env: process.env, timeoutMs: 600_000 });
}

function nodeIn(dir: string, args: string[], env = hiddenEnv) {
  return run(process.execPath, args, { cwd: dir, env });
}

function lastJson(out: string): any {
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON in output:\n${out}`);
  return JSON.parse(line);
}

beforeAll(() => {
  if (!fs.existsSync(path.join(root, 'dist/cjs/index.js')) || !fs.existsSync(path.join(root, 'dist/esm/index.mjs')))
    throw new Error('dist/ is missing: run `npm run build` (npm test does this first)');
  ensurePrebuild();

  work = fs.mkdtempSync(path.join(os.tmpdir(), 'nemotron-pack-'));
  // --ignore-scripts: skip prepack (tsc + prebuild check); dist/ and the prebuild are fresh already.
  const packed = runOk('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, env: cleanEnv() });
  pack = JSON.parse(packed.stdout)[0];

  consumer = path.join(work, 'consumer');
  fs.mkdirSync(consumer);
  fs.writeFileSync(
    path.join(consumer, 'package.json'),
    JSON.stringify({
      name: 'consumer',
      version: '1.0.0',
      private: true,
      // What an npm script sees on PATH (npm may add directories of its own).
      scripts: { probe: `node -e "console.log(JSON.stringify(process.env.PATH))"` },
    }),
  );
  const bin = hiddenToolsBin(work);
  hiddenEnv = cleanEnv({ PATH: bin, npm_config_build_from_source: undefined, NEMOTRON_BUILD_FROM_SOURCE: undefined });
  const r = run(
    'npm',
    ['install', path.join(work, pack.filename), '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'],
    { cwd: consumer, env: hiddenEnv, timeoutMs: 240_000 },
  );
  installOut = r.out;
  if (r.status !== 0) throw new Error(`npm install of the tarball failed:\n${r.out.slice(-4000)}`);
  installed = path.join(consumer, 'node_modules', 'nemotron-node');
}, 600_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  test('the tarball holds only dist, bin, prebuilds, native sources, the install script, README, LICENSE, package.json', () => {
    const files = pack.files.map((f) => f.path);
    const stray = files.filter((f) => !ALLOWED.some((re) => re.test(f)) || FORBIDDEN.some((re) => re.test(f)));
    expect(stray).toEqual([]);
    for (const f of REQUIRED) expect(files).toContain(f);
    const prebuilds = files.filter((f) => /^prebuilds\/[^/]+\/[^/]+\.node$/.test(f));
    expect(prebuilds).toContain(path.relative(root, prebuildFile()!));
    const binaryBytes = pack.files.filter((f) => f.path.endsWith('.node')).reduce((a, f) => a + f.size, 0);
    expect(pack.unpackedSize - binaryBytes).toBeLessThan(MAX_NON_BINARY_BYTES);
    const info = lastJson(
      runOk(process.execPath, ['-e', 'console.log(JSON.stringify(require(process.argv[1]).runtimeInfo()))', prebuildFile()!], { cwd: root, env: process.env }).stdout,
    );
    expect(pack.size).toBeLessThan(info.cuda.compiled ? MAX_TARBALL_BYTES.cuda : MAX_TARBALL_BYTES.cpu);
    console.log(
      `packaging: ${pack.filename}: ${(pack.size / 1024).toFixed(0)} KiB packed, ${(pack.unpackedSize / 1024).toFixed(0)} KiB unpacked, ` +
        `${files.length} files; prebuilds: ${prebuilds.join(', ')}`,
    );
  });
});

describe('install into a project with no compiler, cmake or make on PATH', () => {
  test('the PATH really hides the build tools, also inside npm scripts', () => {
    for (const tool of BUILD_TOOLS) expect(findOnPath(tool, hiddenEnv.PATH)).toBeUndefined();
    const scriptPath: string = JSON.parse(runOk('npm', ['run', '--silent', 'probe'], { cwd: consumer, env: hiddenEnv }).stdout.trim());
    for (const tool of ['cmake', 'c++', 'g++', 'make']) expect(findOnPath(tool, scriptPath)).toBeUndefined();
  });

  test('the install step used the prebuilt binary and compiled nothing', () => {
    expect(installOut).toMatch(/nemotron-node: using the prebuilt binary prebuilds\/linux-x64\/\S+\.node/);
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
  });

  test("require('nemotron-node') works and loads the prebuild", () => {
    fs.writeFileSync(path.join(consumer, 'probe.cjs'), REQUIRE_PROBE);
    const r = nodeIn(consumer, ['probe.cjs']);
    expect(r.status).toBe(0);
    const { kind, info } = lastJson(r.out);
    expect(kind).toBe('function');
    expect(info.source).toBe('prebuild');
    expect(info.binding).toBe(path.join(fs.realpathSync(installed), path.relative(root, prebuildFile()!)));
    expect(typeof info.cuda.reason).toBe('string');
  });

  test("import('nemotron-node') works, with the same module instance as require", () => {
    fs.writeFileSync(path.join(consumer, 'probe.mjs'), IMPORT_PROBE);
    const r = nodeIn(consumer, ['probe.mjs']);
    expect(r.status).toBe(0);
    const { kind, sameClasses, info } = lastJson(r.out);
    expect(kind).toBe('function');
    expect(sameClasses).toBe(true);
    expect(info.source).toBe('prebuild');
  });

  const fx = fixturesDir();
  (fx ? test : test.skip)('the tiny fixture model runs on CPU with the expected greedy tokens', () => {
    fs.writeFileSync(path.join(consumer, 'greedy.cjs'), GREEDY);
    const r = nodeIn(consumer, ['greedy.cjs', path.join(fx!, 'tiny-nemotron-h')]);
    expect(r.status).toBe(0);
    const { device, ids, expected } = lastJson(r.out);
    expect(device).toBe('cpu');
    expect(ids).toEqual(expected);
  });
  if (!fx) console.log('packaging: skipping the fixture model run: ../shared/fixtures not found (set NEMOTRON_FIXTURES)');

  test('a consumer .ts file using the public types compiles (CommonJS and ESM, module node16; classic node10 resolution)', () => {
    fs.writeFileSync(path.join(consumer, 'use.cts'), CONSUMER_TS);
    fs.writeFileSync(path.join(consumer, 'use.mts'), CONSUMER_TS);
    fs.writeFileSync(path.join(consumer, 'use-classic.ts'), CONSUMER_TS);
    const base = {
      strict: true,
      noEmit: true,
      skipLibCheck: false, // check our .d.ts files too
      target: 'es2022',
      // Users of a Node library have @types/node; take the repo's copy.
      typeRoots: [path.join(root, 'node_modules', '@types')],
      types: ['node'],
    };
    const configs: Record<string, object> = {
      'tsconfig.node16.json': { compilerOptions: { ...base, module: 'node16', moduleResolution: 'node16' }, files: ['use.cts', 'use.mts'] },
      'tsconfig.classic.json': { compilerOptions: { ...base, module: 'commonjs', moduleResolution: 'node10'}, files: ['use-classic.ts'] },
    };
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const [name, cfg] of Object.entries(configs)) {
      fs.writeFileSync(path.join(consumer, name), JSON.stringify(cfg, null, 2));
      const r = nodeIn(consumer, [tsc, '-p', name]);
      if (r.status !== 0) throw new Error(`tsc -p ${name} failed:\n${r.out}`);
    }
  });

  test('--build-from-source without build tools fails with a message naming what is missing', () => {
    const r = nodeIn(installed, ['scripts/install.js'], { ...hiddenEnv, npm_config_build_from_source: 'true' });
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('building the native addon from source: --build-from-source was given');
    expect(r.out).toMatch(/cmake: NOT FOUND/);
    expect(r.out).toMatch(/C\+\+ compiler: NOT FOUND/);
    expect(r.out).toMatch(/C compiler: NOT FOUND/);
    expect(r.out).toMatch(/CPU-only build/);
    expect(r.out).toMatch(/cannot build from source; missing:\n.*cmake/);
  });

  test('a prebuild that matches by name but does not load (e.g. too old a glibc) is not trusted: it falls back to a source build', () => {
    // A copy of the installed package (inside node_modules, so its dependencies resolve) with a broken binary.
    const copy = path.join(consumer, 'node_modules', '.nemotron-broken');
    fs.cpSync(installed, copy, { recursive: true });
    const file = path.join(copy, path.relative(root, prebuildFile()!));
    fs.writeFileSync(file, 'not an ELF file');
    const r = nodeIn(copy, ['scripts/install.js']);
    fs.rmSync(copy, { recursive: true, force: true });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/building the native addon from source: prebuilds\/\S+\.node does not load here/);
    expect(r.out).toMatch(/cmake: NOT FOUND/);
  });
});

describe('source build from the tarball (the fallback when no prebuild matches)', () => {
  const haveTools = !!findOnPath('cmake') && !!(findOnPath('c++') || findOnPath('g++') || findOnPath('clang++'));
  if (!haveTools) console.log('packaging: skipping the source build: cmake or a C++ compiler is not on PATH');
  (haveTools ? test : test.skip)(
    '--build-from-source compiles only the addon (no native tests shipped) and the local build is then loaded',
    () => {
      const env = cleanEnv({ npm_config_build_from_source: 'true' });
      const { out } = runOk(process.execPath, ['scripts/install.js'], { cwd: installed, env, timeoutMs: 300_000 });
      expect(out).toMatch(/CUDA toolkit: (found .*; this version has no CUDA backend: CPU-only build|not found: CPU-only build)/);
      expect(out).toContain('built build/Release/nemotron_node.node (CPU-only)');
      const r = nodeIn(consumer, ['probe.cjs'], env);
      expect(r.status).toBe(0);
      const { info } = lastJson(r.out);
      expect(info.source).toBe('local-build');
      expect(info.binding).toBe(path.join(fs.realpathSync(installed), 'build', 'Release', 'nemotron_node.node'));
    },
    300_000,
  );
});

describe('GPU code in the binary', () => {
  test('a CUDA build lists the expected GPU architectures (fatbin-archs.py)', () => {
    // Ask the shipped binary itself (the repo's dist/ would load build/Release instead).
    const file = prebuildFile()!;
    const info = lastJson(runOk(process.execPath, ['-e', 'console.log(JSON.stringify(require(process.argv[1]).runtimeInfo()))', file], { cwd: root, env: process.env }).stdout);
    if (!info.cuda.compiled) {
      console.log(`packaging: skipping the GPU arch check: ${path.basename(file)} was built without CUDA (${info.cuda.reason})`);
      return;
    }
    const tool = path.join(root, '..', 'shared', 'tools', 'fatbin-archs.py');
    if (!fs.existsSync(tool)) {
      console.log(`packaging: skipping the GPU arch check: ${tool} not found`);
      return;
    }
    const archs = runOk('python3', [tool, file], { cwd: root, env: process.env }).stdout;
    // The binary must hold exactly what it was configured with ("80-real" -> sm_80 ELF,
    // "90-virtual" -> compute_90 PTX). CI compiles one architecture to save time; a
    // release prebuild uses the default list, which must cover Ampere, Ada and Hopper + PTX.
    const configured: string[] = String(info.cuda.archs).split(',').filter(Boolean);
    expect(configured.length).toBeGreaterThan(0);
    for (const a of configured) {
      // The fatbin records only the numeric architecture: sm_90a code is listed as sm_90.
      const [num, kind] = a.replace(/a(?=-)/, '').split('-');
      if (kind === 'virtual') expect(archs).toMatch(new RegExp(`^compute_${num} ptx$`, 'm'));
      else expect(archs).toMatch(new RegExp(`^sm_${num} elf$`, 'm'));
    }
    // A binary configured with CMake's default list (a release prebuild) must cover Ampere, Ada and Hopper + PTX.
    if (configured.join(',') === '80-real,86-real,89-real,90a-real,90-virtual') {
      for (const sm of ['sm_80', 'sm_86', 'sm_89', 'sm_90']) expect(archs).toMatch(new RegExp(`^${sm} elf$`, 'm'));
      expect(archs).toMatch(/^compute_90 ptx$/m);
    }
  });
});
