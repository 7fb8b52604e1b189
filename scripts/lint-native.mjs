#!/usr/bin/env node
// Lint of the native sources that reads clang's AST, not the text, so a
// comment, a string or a std::string operator cannot fool it:
//
//   node scripts/lint-native.mjs [--root DIR] [file.cc ...]
//
// 1. No `==`/`!=` between two char pointers of which one points to const
//    (nullptr aside), anywhere in native/. Such a comparison asks whether two strings share an address,
//    which depends on whether the linker merged identical literals: GNU ld
//    does, zig's Mach-O link and AddressSanitizer do not. In the AST a
//    std::string or std::string_view comparison is a CXXOperatorCallExpr, so
//    only a built-in BinaryOperator whose operands are both `char *` (after
//    the implicit conversions: literals decay, fields and constexpr pointers
//    load) is flagged. Compare by value: an enum, or std::strcmp. Two
//    mutable `char *` are cursors into a buffer the code filled (a literal
//    cannot be one without a cast), so `end != buf` after strtoll passes;
//    cursors into a const buffer compare as offsets instead.
// 2. No non-reentrant or process-global libc call in native/core (BANNED):
//    the core runs on libuv's pool and a dedicated thread, next to Node's own
//    threads, so a static result buffer or process-wide state is shared.
//
// Every file is parsed for each platform it is built on: darwin sources
// (and everything shared) with zig's clang against zig's macOS 11 headers
// (the toolchain scripts/prebuild-all.mjs caches), linux sources (and
// everything shared) with the host's clang++. Exit 1 on any finding or on
// a file that does not parse.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { ensureNpmPackage, TOOLS } from './prebuild-all.mjs'

const repo = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
const require = createRequire(path.join(repo, 'package.json'))

// Calls that keep their result or state in one place for the whole process,
// with the thread-safe form to use instead. Chosen from POSIX's list of
// functions that need not be thread-safe (XSH 2.9.1) plus the BSD/Apple
// ones with the same defect, and the calls that change process-wide state
// other threads depend on.
export const BANNED = new Map([
  // Static result buffers (POSIX 2.9.1).
  ['getmntinfo', 'a static buffer reused by every caller: use getmntinfo_r_np (macOS 10.13+)'],
  ['strtok', 'keeps its position in a static: use strtok_r'],
  ['localtime', 'static struct tm: use localtime_r'],
  ['gmtime', 'static struct tm: use gmtime_r'],
  ['ctime', 'static buffer: use ctime_r or strftime'],
  ['asctime', 'static buffer: use strftime'],
  ['getpwnam', 'static struct passwd: use getpwnam_r'],
  ['getpwuid', 'static struct passwd: use getpwuid_r'],
  ['getpwent', 'static struct and a shared cursor'],
  ['getgrnam', 'static struct group: use getgrnam_r'],
  ['getgrgid', 'static struct group: use getgrgid_r'],
  ['getgrent', 'static struct and a shared cursor'],
  ['strerror', 'may return a static buffer (unknown errno): use strerror_r, or the errno name'],
  ['strsignal', 'may return a static buffer'],
  ['ttyname', 'static buffer: use ttyname_r'],
  ['getlogin', 'static buffer: use getlogin_r'],
  ['ptsname', 'static buffer: use ptsname_r'],
  ['inet_ntoa', 'static buffer: use inet_ntop'],
  ['gethostbyname', 'static result: use getaddrinfo'],
  ['gethostbyaddr', 'static result: use getnameinfo'],
  ['dirname', 'may modify its argument and return a static buffer'],
  ['basename', 'may modify its argument and return a static buffer'],
  ['rand', 'shared hidden state'],
  ['drand48', 'shared hidden state'],
  ['lrand48', 'shared hidden state'],
  ['tmpnam', 'static buffer, and a name that races'],
  ['tempnam', 'a name that races: create with O_EXCL instead'],
  ['mktemp', 'a name that races: create with O_EXCL instead'],
  ['ecvt', 'static buffer'],
  ['fcvt', 'static buffer'],
  ['l64a', 'static buffer'],
  ['getopt', 'global cursor'],
  // Deprecated: the caller must size struct dirent for the longest name of
  // any filesystem; readdir on a stream this thread owns is safe on glibc
  // and macOS.
  ['readdir_r', 'deprecated (buffer sizing): use readdir on a DIR* this thread owns'],
  // Process-wide state that Node's other threads rely on.
  ['setlocale', 'process-wide locale'],
  ['setenv', 'races getenv on every other thread'],
  ['unsetenv', 'races getenv on every other thread'],
  ['putenv', 'races getenv on every other thread'],
  ['umask', 'process-wide: set the mode with fchmod on the new fd instead'],
  ['chdir', 'process-wide working directory: use *at() calls'],
  ['fchdir', 'process-wide working directory: use *at() calls'],
  ['signal', 'process-wide handler with unspecified semantics: the core installs none'],
])

// Findings accepted for now, by file and call: each needs a TODO saying who
// removes it. Empty when every file is clean.
export const ALLOWED = new Map()

const CONST_POINTEE = /^(?:volatile )*const /
const CHAR_POINTER = /^(?:const |volatile )*(?:signed |unsigned )?char(?: const| volatile)* \*(?: ?const| ?volatile)*$/

function zigClangArgs () {
  const zigDir = ensureNpmPackage(TOOLS.zig)
  const lib = path.join(zigDir, 'lib')
  // The header set `zig c++ -target aarch64-macos.11.0` uses (see its -###).
  const inc = [
    'libcxx/include', 'libcxxabi/include', 'include',
    'libc/include/aarch64-macos.11-none', 'libc/include/any-macos.11-any', 'libc/include/any-macos-any',
  ].flatMap((d) => ['-isystem', path.join(lib, d)])
  return {
    cmd: path.join(zigDir, TOOLS.zig.bin),
    args: ['clang', '-target', 'arm64-apple-macos11', '-x', 'c++', '-nostdinc', '-nostdinc++', ...inc,
      '-D_LIBCPP_DISABLE_VISIBILITY_ANNOTATIONS', '-D_LIBCXXABI_DISABLE_VISIBILITY_ANNOTATIONS',
      '-D_LIBCPP_HAS_NO_VENDOR_AVAILABILITY_ANNOTATIONS', '-D_LIBCPP_ABI_VERSION=1', '-D_LIBCPP_ABI_NAMESPACE=__1'],
  }
}

function hostClangArgs () {
  if (spawnSync('clang++', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('clang++ is not installed (apt-get install clang)')
  }
  return { cmd: 'clang++', args: [] }
}

function commonArgs (root) {
  const addonApi = path.dirname(require.resolve('node-addon-api/package.json'))
  return ['-std=c++17', '-fsyntax-only', '-fno-color-diagnostics', '-Xclang', '-ast-dump',
    '-I', path.join(root, 'native', 'core'), '-I', addonApi, '-I', require('node-api-headers').include_dir,
    '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DBLX_SOURCE_HASH="lint"']
}

/** Platforms a source under native/ is built for. */
function platformsOf (rel) {
  if (rel.startsWith('native/core/darwin/')) return ['darwin']
  if (rel.startsWith('native/core/linux/')) return ['linux']
  // The fuzz targets build with clang's libFuzzer on Linux only.
  if (rel.startsWith('native/fuzz/')) return ['linux']
  return ['linux', 'darwin']
}

const NODE = /^([ |`-]*)([A-Za-z]+) 0x[0-9a-f]+ ?(.*)$/
const LOC = /(?:^|[<\s,=])(col:(\d+)|line:(\d+):\d+|(<built-in>|<scratch space>|[^\s<>,'"()=]+):(\d+):\d+)/g

/**
 * Streams one AST dump and returns its findings. clang prints a file name
 * only where it changes from the last location printed, so the file (and
 * line) of each node follows from every location before it.
 */
async function lintDump (child, rel, inCore) {
  const findings = []
  let file = ''
  let line = 0
  // Open == / != nodes: { depth, file, line, operands: [{type, isNull}] }
  const open = []
  // The kind of the last node seen at each depth: a node's parent is at depth - 2.
  const kinds = []
  const rl = readline.createInterface({ input: child.stdout, crlfDelay: Infinity })
  for await (const text of rl) {
    const m = NODE.exec(text)
    if (m === null) continue
    const depth = m[1].length
    const kind = m[2]
    const rest = m[3]
    const quote = rest.search(/['"]/)
    const locPart = quote < 0 ? rest : rest.slice(0, quote)
    let firstLine = null
    let firstFile = null
    for (const l of locPart.matchAll(LOC)) {
      if (l[3] !== undefined) line = Number(l[3])
      else if (l[4] !== undefined) { file = l[4]; line = Number(l[5]) }
      if (firstLine === null) { firstLine = line; firstFile = file }
    }
    const nodeFile = firstFile ?? file
    const nodeLine = firstLine ?? line
    // Close comparisons this node is not inside of; a direct child is an operand.
    while (open.length > 0 && depth <= open[open.length - 1].depth) settle(open.pop())
    const parent = open[open.length - 1]
    if (parent !== undefined && depth === parent.depth + 2 && parent.operands.length < 2) {
      const types = [...rest.matchAll(/'([^']*)'/g)].map((t) => t[1])
      const type = types.length > 1 && types[1] !== 'lvalue' ? types[1] : types[0] ?? ''
      parent.operands.push({ type, isNull: kind === 'CXXNullPtrLiteralExpr' || kind === 'GNUNullExpr' || rest.includes('<NullToPointer>') })
    }
    kinds[depth] = kind
    const isMine = nodeFile.endsWith(rel)
    // A range-for's own `__begin != __end` is the loop's, not the source's.
    const inRangeFor = depth >= 2 && kinds[depth - 2] === 'CXXForRangeStmt'
    if (kind === 'BinaryOperator' && /'(==|!=)'$/.test(rest) && isMine && !inRangeFor) {
      open.push({ depth, line: nodeLine, op: rest.slice(-3, -1), operands: [] })
    }
    if (inCore && kind === 'DeclRefExpr' && isMine) {
      const f = /lvalue Function 0x[0-9a-f]+ '([^']+)'/.exec(rest)
      if (f !== null && BANNED.has(f[1]) && !ALLOWED.get(rel)?.has(f[1])) {
        findings.push(`${rel}:${nodeLine}: ${f[1]}() is not thread-safe here: ${BANNED.get(f[1])}`)
      }
    }
  }
  while (open.length > 0) settle(open.pop())
  return findings

  function settle (cmp) {
    const [a, b] = cmp.operands
    if (a === undefined || b === undefined) return
    if (a.isNull || b.isNull) return
    // A literal is `const char[N]`, so a pointer that may hold one points to
    // const; two mutable `char *` are cursors into a buffer this code owns.
    if (CHAR_POINTER.test(a.type) && CHAR_POINTER.test(b.type) && (CONST_POINTEE.test(a.type) || CONST_POINTEE.test(b.type))) {
      findings.push(`${rel}:${cmp.line}: '${cmp.op}' compares two char pointers (${a.type}, ${b.type}) by address; ` +
        'identical strings may or may not share one depending on the linker: compare values (enum, strcmp)')
    }
  }
}

async function lintFile (root, rel, platform, compilers) {
  const c = compilers[platform]()
  const child = spawn(c.cmd, [...c.args, ...commonArgs(root), path.join(root, rel)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)))
  const findings = await lintDump(child, rel, rel.startsWith('native/core/'))
  const code = await exited
  if (code !== 0) findings.push(`${rel} (${platform}): does not parse:\n${stderr.trim()}`)
  return findings.map((f) => `[${platform}] ${f}`)
}

function nativeSources (root) {
  return fs.readdirSync(path.join(root, 'native'), { recursive: true }).map(String)
    .filter((f) => f.endsWith('.cc')).map((f) => path.posix.join('native', f.split(path.sep).join('/'))).sort()
}

export async function lintNative (root = repo, files = nativeSources(root), jobs = 2) {
  const cache = {}
  const compilers = {
    linux: () => (cache.linux ??= hostClangArgs()),
    darwin: () => (cache.darwin ??= zigClangArgs()),
  }
  const work = files.flatMap((rel) => platformsOf(rel).map((platform) => ({ rel, platform })))
  const findings = []
  let next = 0
  await Promise.all(Array.from({ length: jobs }, async () => {
    while (next < work.length) {
      const { rel, platform } = work[next++]
      findings.push(...await lintFile(root, rel, platform, compilers))
    }
  }))
  return { checked: work.length, findings: findings.sort() }
}

if (process.argv[1] !== undefined && import.meta.url === `file://${fs.realpathSync(process.argv[1])}`) {
  const args = process.argv.slice(2)
  let root = repo
  const i = args.indexOf('--root')
  if (i >= 0) { root = path.resolve(args[i + 1]); args.splice(i, 2) }
  const started = Date.now()
  const { checked, findings } = await lintNative(root, args.length > 0 ? args : undefined)
  for (const f of findings) console.error(f)
  console.error(`lint-native: ${checked} parses, ${findings.length} findings (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  process.exit(findings.length > 0 ? 1 : 0)
}
