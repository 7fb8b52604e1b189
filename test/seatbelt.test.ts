// box.seatbeltProfile(): BoxLite's macOS jail policy as SBPL text. There is
// no macOS here, so every generated profile is read back by a small
// S-expression reader (helpers/sbpl.ts: balanced, strings escaped, no
// unfiltered rule), three boxes are kept as golden files
// (fixtures/seatbelt/*.sb; UPDATE_GOLDEN=1 rewrites them), and paths are
// checked to come out as macOS names them: a symlinked /tmp-like parent
// resolved, a symlink leaf kept, a missing tail re-appended.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { CA_STORES, mintBoxId, type BoxLayout } from '../lib/index.ts'
import { freshHome, privateLinkUid } from './helpers/boxes.ts'
import { needs, testWith } from './helpers/env.ts'
import { scratch } from './helpers/fixtures.ts'
import { inPrivateNamespace, lastJson } from './helpers/private-ns.ts'
import { profileProblems, profileStrings, readSbpl } from './helpers/sbpl.ts'

const GOLDEN = path.join(import.meta.dirname, 'fixtures', 'seatbelt')

/** The profile's rule for an operation (its first line) and the filters under it, as text. */
function block (profile: string, head: string, nth = 0): string[] {
  const lines = profile.split('\n')
  let seen = -1
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== head) continue
    if (++seen < nth) continue
    const out: string[] = []
    for (let j = i + 1; j < lines.length && lines[j]!.startsWith('  '); j++) out.push(lines[j]!.trim())
    // The rule's own closing parenthesis ends its last filter.
    if (out.length > 0) out[out.length - 1] = out.at(-1)!.slice(0, -1)
    return out
  }
  return []
}

test('the reader refuses what a profile must never be: unbalanced, bad escapes, unfiltered path rules, empty filter lists', (t) => {
  const ok = '(version 1)\n(deny default)\n(allow file-read* (literal "/a\\"b\\\\c"))\n'
  t.deepEqual(profileProblems(ok), [])
  t.deepEqual(profileStrings(ok), ['/a"b\\c'])
  t.throws(() => readSbpl('(allow (literal "/x")'), { message: /unbalanced/ })
  t.throws(() => readSbpl('(allow))'), { message: /unbalanced/ })
  t.throws(() => readSbpl('(literal "/x\\q")'), { message: /escape/ })
  t.throws(() => readSbpl('(literal "/x\ny")'), { message: /control/ })
  t.throws(() => readSbpl('(literal "/x)'), { message: /unterminated/ })
  const bad = (rule: string) => profileProblems(`(version 1)\n(deny default)\n${rule}\n`)
  t.deepEqual(bad('(allow file-write*)'), ['unfiltered file-write*'])
  t.deepEqual(bad('(allow network-bind)'), ['unfiltered network-bind'])
  t.deepEqual(bad('(allow file-read* (require-all))'), ['empty require-all'])
  t.deepEqual(bad('(allow file-read* (subpath "relative"))'), ['subpath needs one absolute path: (subpath "relative")'])
  t.deepEqual(bad('(allow mach-lookup (global-name ""))'), ['mach-lookup needs one name: (global-name "")'.replace('mach-lookup', 'global-name')])
  t.deepEqual(bad('(allow network-outbound)'), [], 'IP networking is allowed unfiltered on purpose')
})

testWith([needs.linux, needs.root, needs.tool('unshare', 'util-linux')], 'golden profiles: networking on, networking off, volumes with a backing chain', async (t) => {
  const r = await inPrivateNamespace('test/fixtures/seatbelt-golden.ts', [])
  const profiles = lastJson<Record<string, string>>(t, r)
  t.deepEqual(Object.keys(profiles), ['net-on', 'net-off', 'volumes'])
  for (const [name, profile] of Object.entries(profiles)) {
    t.deepEqual(profileProblems(profile), [], name)
    const file = path.join(GOLDEN, `${name}.sb`)
    if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, profile)
    t.is(profile, fs.readFileSync(file, 'utf8'), `${name} differs from ${file} (UPDATE_GOLDEN=1 rewrites it; review the diff)`)
  }
  const on = profiles['net-on']!
  const off = profiles['net-off']!
  const box = '/tmp/seatbelt/home/boxes/net-on'
  t.deepEqual(block(on, '(allow network-bind'), [
    ...['box.sock', 'net.sock', 'net.sock-krun.sock', 'gvproxy-ctl.sock'].flatMap((n) => [`(literal "/tmp/bl-501/net-on/${n}")`, `(literal "${box}/sockets/${n}")`]),
  ])
  t.deepEqual(block(on, '(allow network-outbound'), [
    ...['ready.sock', 'net.sock', 'net.sock-krun.sock'].flatMap((n) => [`(literal "/tmp/bl-501/net-on/${n}")`, `(literal "${box}/sockets/${n}")`]),
  ])
  t.true(on.includes('\n(allow network-outbound)\n(allow network-inbound)\n(allow system-socket)\n'))
  t.true(off.endsWith(';; IP networking\n; IP networking disabled\n'), 'no network block without networking')
  t.deepEqual(block(off, '(allow network-bind'), ['(literal "/tmp/bl-501/net-off/box.sock")', '(literal "/tmp/seatbelt/home/boxes/net-off/sockets/box.sock")'],
    'the endpoints are granted whatever the network setting')
  const vols = profiles.volumes!
  const writes = block(vols, '(allow file-write*', 1)
  t.true(writes.includes('(subpath "/tmp/seatbelt/data")'))
  t.false(writes.some((w) => w.includes('/tmp/seatbelt/models')), 'a read-only volume is not writable')
  t.false(vols.includes('/tmp/seatbelt/missing'), 'a missing volume is not granted')
  const reads = block(vols, '(allow file-read*', 1)
  t.deepEqual(reads.filter((r) => r.includes('/home/bases') || r.includes('/disk-images')), [
    // disks/../../../bases, as macOS resolves it (then {home}/bases, the same, is not repeated)
    '(literal "/tmp/seatbelt/home/bases")',
    '(subpath "/tmp/seatbelt/home/bases")',
    '(literal "/tmp/seatbelt/home/bases/base.qcow2")',
    '(literal "/tmp/seatbelt/home/images/disk-images")',
    '(subpath "/tmp/seatbelt/home/images/disk-images")',
    '(literal "/tmp/seatbelt/home/images/disk-images/rootfs.ext4")',
  ], 'each backing file read-only, after its directory')
})

/** A prepared box whose home is reached through tmp -> private/tmp-like, as /tmp is on a Mac. */
async function throughSymlinkedParent (t: import('ava').ExecutionContext): Promise<{ box: BoxLayout, real: string, logical: string }> {
  const root = scratch(t)
  fs.mkdirSync(path.join(root, 'private', 'tmp-like'), { recursive: true })
  fs.symlinkSync('private/tmp-like', path.join(root, 'tmp'))
  const home = freshHome(t, path.join(root, 'tmp'))
  const box = home.box(mintBoxId(), { uid: privateLinkUid(t) })
  await box.prepare()
  fs.writeFileSync(box.exitFilePath, '')
  return { box, real: path.join(root, 'private', 'tmp-like'), logical: path.join(root, 'tmp') }
}

test('paths as macOS names them: a symlinked /tmp-like parent resolved, a symlink leaf kept, a missing tail re-appended', async (t) => {
  const { box, real, logical } = await throughSymlinkedParent(t)
  const profile = await box.seatbeltProfile()
  t.deepEqual(profileProblems(profile), [])
  const strings = profileStrings(profile)
  t.false(strings.some((s) => s.startsWith(`${logical}/`)), 'nothing is named through the symlinked parent')
  const realBox = box.root.replace(logical, real)
  t.true(strings.includes(`${realBox}/tmp`))
  t.true(strings.includes(`${realBox}/exit`))
  // sockets/box.sock does not exist yet: its nearest ancestor is resolved, the tail re-appended.
  t.true(strings.includes(`${realBox}/sockets/box.sock`))
  // /tmp/bl-{uid}/{id} is a symlink: kept as named, the socket under it re-appended.
  t.true(strings.includes(`${box.sockets.bindingDir}/box.sock`))
  t.deepEqual(block(profile, '(allow file-read*', 1).slice(0, 1), [`(subpath "${realBox}/bin")`], 'the shim\'s directory first')
  t.is(profile, await box.seatbeltProfile(), 'the same box, the same profile')
  t.is(profile, box.seatbeltProfileSync(), 'sync and Promise forms agree')
})

test('every profile reads back clean: quotes, backslashes, spaces and non-ASCII in paths; bad options refused', async (t) => {
  const root = scratch(t)
  const odd = path.join(root, 'a "quoted" \\ dir é')
  fs.mkdirSync(odd)
  const home = freshHome(t, odd)
  const box = home.box(mintBoxId(), { uid: privateLinkUid(t) })
  await box.prepare()
  const volume = path.join(root, 'vol"\\')
  fs.mkdirSync(volume)
  for (const options of [{}, { network: false }, { networkBackend: false }, { volumes: [{ path: volume, readOnly: true }] }]) {
    const profile = await box.seatbeltProfile(options)
    t.deepEqual(profileProblems(profile), [], JSON.stringify(options))
    t.true(profileStrings(profile).some((s) => s.startsWith(odd)), 'the odd home is named, decoded back exactly')
  }
  t.true(profileStrings(await box.seatbeltProfile({ volumes: [{ path: volume }] })).includes(volume))
  for (const bad of [{ network: false, networkBackend: true }, { shim: 'relative' }, { shim: `${root}/new\u0001line/boxlite-shim` }]) {
    await t.throwsAsync(box.seatbeltProfile(bad), { code: 'ERR_INVALID_ARG' }, JSON.stringify(bad))
  }
  const ca = CA_STORES.filter((p) => fs.existsSync(p) && !fs.lstatSync(p).isSymbolicLink())
  const strings = profileStrings(await box.seatbeltProfile())
  for (const p of ca) t.true(strings.includes(p), `${p}: a CA store that exists is readable`)
})
