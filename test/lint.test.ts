// The repository's own lints fail on the defects they exist for: planted
// examples in a scratch copy of the layout they scan, each line that must be
// flagged marked `// FLAG` and checked line for line, both ways.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { repoRoot, run, scratch } from './helpers/fixtures.ts'

function plant (root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
  fs.writeFileSync(path.join(root, rel), text)
}

function flaggedLines (text: string): number[] {
  return text.split('\n').flatMap((l, i) => (l.includes('// FLAG') ? [i + 1] : []))
}

/** Lines the lint reported for `rel`, per platform ("linux:12"). */
function reported (stderr: string, rel: string): string[] {
  return [...new Set([...stderr.matchAll(/^\[(\w+)\] ([^:\s]+):(\d+): /gm)].filter((m) => m[2] === rel).map((m) => `${m[1]}:${m[3]}`))].sort()
}

const COMPARES = `#include <cstring>
#include <string>
#include <string_view>
namespace reason {
constexpr const char* kWouldBlock = "would-block";
}
struct Error {
  const char* reason = nullptr;
  const char* syscall = nullptr;
};
bool by_address(const Error& e) { return e.reason == reason::kWouldBlock; }  // FLAG
bool literal(const Error& e) { return e.syscall != "openat"; }  // FLAG
bool both_ways(const char* a, const char* b) { return a == b || (b != a); }  // FLAG
const char* name_of(int) { return "x"; }
bool call(const char* a) { return name_of(1) == a; }  // FLAG
bool null_checks(const char* a) { return a == nullptr || a != NULL || !a; }
bool values(const Error& e, const std::string& s, std::string_view v) {
  return std::strcmp(e.reason, reason::kWouldBlock) == 0 || s == "x" || "y" != s || v == "z" || s == e.syscall;
}
long cursor(char* buf) {
  char* end = nullptr;
  long n = std::strtol(buf, &end, 10);
  return end != buf ? n : -1;
}
int loop() {
  const char text[] = "abc";
  int n = 0;
  for (char c : text) n += c;
  return n;
}
// A comment that says p == "x" is not code.
`

test('lint-native flags every char-pointer comparison by address, and nothing else', async (t) => {
  const root = scratch(t, 'blx-lint-')
  // native/core/linux is parsed for Linux only; native/test for both platforms.
  plant(root, 'native/core/linux/planted.cc', COMPARES)
  plant(root, 'native/test/planted.cc', COMPARES)
  const r = await run(process.execPath, [path.join(repoRoot, 'scripts', 'lint-native.mjs'), '--root', root], { cwd: repoRoot })
  t.is(r.code, 1, r.stderr)
  const lines = flaggedLines(COMPARES)
  t.deepEqual(reported(r.stderr, 'native/core/linux/planted.cc'), lines.map((l) => `linux:${l}`).sort(), r.stderr)
  t.deepEqual(reported(r.stderr, 'native/test/planted.cc'), [...lines.map((l) => `darwin:${l}`), ...lines.map((l) => `linux:${l}`)].sort(), r.stderr)
  t.regex(r.stderr, /compares two char pointers/)
})

const CALLS = `#include <string.h>
#include <time.h>
#include <pwd.h>
#include <sys/param.h>
#include <sys/mount.h>
// strerror(errno) in a comment is not a call.
const char* describe(int e) { return strerror(e); }  // FLAG
int mounts() {
  struct statfs* m = nullptr;
  return getmntinfo(&m, MNT_NOWAIT);  // FLAG
}
struct tm* when(const time_t* t) { return localtime(t); }  // FLAG
int uid_of(const char* n) {
  struct passwd* p = getpwnam(n);  // FLAG
  return p == nullptr ? -1 : static_cast<int>(p->pw_uid);
}
char* first(char* s) {
  char* save = nullptr;
  return strtok_r(s, ",", &save);
}
`

test('lint-native bans non-reentrant libc calls in native/core (parsed as darwin), and only there', async (t) => {
  const root = scratch(t, 'blx-lint-')
  plant(root, 'native/core/darwin/planted.cc', CALLS)
  // The same calls outside native/core are not the core's (the binding runs on the JS thread).
  plant(root, 'native/binding/planted.cc', CALLS.replace(/\s*\/\/ FLAG/g, '').replace(/#include <sys\/mount.h>\n/, '#include <sys/mount.h>\n#ifdef __linux__\n#include <sys/statfs.h>\nstatic int getmntinfo(struct statfs**, int) { return 0; }\n#define MNT_NOWAIT 0\n#endif\n'))
  const r = await run(process.execPath, [path.join(repoRoot, 'scripts', 'lint-native.mjs'), '--root', root], { cwd: repoRoot })
  t.is(r.code, 1, r.stderr)
  t.deepEqual(reported(r.stderr, 'native/core/darwin/planted.cc'), flaggedLines(CALLS).map((l) => `darwin:${l}`).sort(), r.stderr)
  t.deepEqual(reported(r.stderr, 'native/binding/planted.cc'), [], r.stderr)
  t.regex(r.stderr, /getmntinfo\(\) is not thread-safe here: .*getmntinfo_r_np/)
})

test('check-imports fails when code outside test/ imports from test/', async (t) => {
  const root = scratch(t, 'blx-lint-')
  plant(root, 'test/helpers/x.ts', 'export const x = 1\n')
  plant(root, 'test/a.test.ts', "import { x } from './helpers/x.ts'\nvoid x\n")
  plant(root, 'lib/ok.ts', "import fs from 'node:fs'\nexport const y = fs\n")
  plant(root, 'lib/bad.ts', "import { x } from '../test/helpers/x.ts'\nexport const y = x\n")
  plant(root, 'scripts/bad.mjs', "const m = await import(path.join(root, 'test', 'helpers', 'x.ts'))\nconst n = require('../test/helpers/x.ts')\n")
  const r = await run(process.execPath, [path.join(repoRoot, 'scripts', 'check-imports.mjs'), '--root', root], { cwd: repoRoot })
  t.is(r.code, 1)
  const found = [...r.stderr.matchAll(/^(\S+):(\d+): /gm)].map((m) => `${m[1]}:${m[2]}`).sort()
  t.deepEqual(found, ['lib/bad.ts:1', 'scripts/bad.mjs:1', 'scripts/bad.mjs:2'])
})

test('check-imports fails on an import cycle among lib/ modules, type-only imports included, and on nothing else', async (t) => {
  const root = scratch(t, 'blx-lint-')
  // a -> b -> c -> a, the closing edge type-only and spread over lines.
  plant(root, 'lib/a.ts', "import fs from 'node:fs'\nimport { b } from './b.ts'\nexport const a = [fs, b]\n")
  plant(root, 'lib/b.ts', "export { c as b } from './c.ts'\n")
  plant(root, 'lib/c.ts', "// first\nimport type {\n  A,\n} from './a.ts'\nexport const c: A | 1 = 1\n")
  // A diamond is no cycle; nor is a module importing a sibling that imports nothing back.
  plant(root, 'lib/top.ts', "import './left.ts'\nimport { r } from './right.ts'\nexport const top = r\n")
  plant(root, 'lib/left.ts', "export * from './leaf.ts'\n")
  plant(root, 'lib/right.ts', "export { leaf as r } from './leaf.ts'\n")
  plant(root, 'lib/leaf.ts', 'export const leaf = 1\n')
  // lib/cli/ counts, through ../.
  plant(root, 'lib/cli/main.ts', "import { run } from './sub.ts'\nexport const ctx = run\n")
  plant(root, 'lib/cli/sub.ts', "import type { ctx } from './main.ts'\nimport { leaf } from '../leaf.ts'\nexport const run = leaf\n")
  const r = await run(process.execPath, [path.join(repoRoot, 'scripts', 'check-imports.mjs'), '--root', root], { cwd: repoRoot })
  t.is(r.code, 1)
  const found = [...r.stderr.matchAll(/^(\S+):(\d+): import cycle: (.*)$/gm)].map((m) => `${m[1]}:${m[2]}: ${m[3]}`).sort()
  t.deepEqual(found, [
    'lib/c.ts:2: lib/a.ts -> lib/b.ts -> lib/c.ts -> lib/a.ts',
    'lib/cli/sub.ts:1: lib/cli/main.ts -> lib/cli/sub.ts -> lib/cli/main.ts',
  ])
})

test('the repository itself passes check-imports', async (t) => {
  const r = await run(process.execPath, [path.join(repoRoot, 'scripts', 'check-imports.mjs')], { cwd: repoRoot })
  t.is(r.code, 0, r.stderr)
})
