// Ids (README, "Ids"): ids are path components; bad ones are refused with
// ERR_INVALID_ARG before anything is created on disk.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import {
  BoxId, BoxLayout, BoxSockets, HomeLayout, LayoutError, mintBoxId, SharedGuestLayout, validateBoxId,
} from '../lib/index.ts'
import { pathsBelow, scratch } from './helpers/fixtures.ts'

const BAD_IDS: Array<[string, unknown]> = [
  ['empty', ''],
  ['129 bytes', 'a'.repeat(129)],
  ['dot-dot', '..'],
  ['dot', '.'],
  ['slash', 'a/b'],
  ['leading slash', '/etc'],
  ['NUL', 'a\0b'],
  ['space', 'a b'],
  ['tab', 'a\tb'],
  ['newline', 'a\n'],
  ['non-ASCII', 'bóx'],
  ['emoji', '📦'],
  ['dot inside', 'a.b'],
  ['not a string', 42],
  ['null', null],
]

test('valid ids: 1 to 128 of [A-Za-z0-9_-]', (t) => {
  for (const id of ['a', 'Z', '0', '_', '-', 'box-1_A', 'a'.repeat(128)]) t.is(validateBoxId(id), id)
})

for (const [label, bad] of BAD_IDS) {
  test(`bad box id (${label}) is ERR_INVALID_ARG and creates nothing`, async (t) => {
    const root = scratch(t)
    const home = new HomeLayout({ home: path.join(root, 'home') })
    await home.prepare()
    const before = pathsBelow(root)
    const e = t.throws(() => home.box(bad as string, { isolateMounts: true }), { instanceOf: LayoutError })
    t.is(e.code, 'ERR_INVALID_ARG')
    t.is(e.errno, undefined)
    t.regex(e.message, /"boxId" must be 1-128 characters/)
    if (typeof bad === 'string' && bad !== '' && !bad.includes('/')) {
      // A box dir whose last component is not an id ("boxes/..": the home!).
      t.throws(() => new BoxLayout(`${home.boxesDir}/${bad}`, {}), { instanceOf: LayoutError })
    }
    t.throws(() => new BoxSockets(bad as string, '/x/sockets'), { code: 'ERR_INVALID_ARG' })
    t.throws(() => SharedGuestLayout.guest().container(bad as string), { code: 'ERR_INVALID_ARG' })
    t.throws(() => SharedGuestLayout.guest().container('c1').volumeDir(bad as string), { code: 'ERR_INVALID_ARG' })
    t.deepEqual(pathsBelow(root), before, 'nothing created on disk')
  })
}

test('a box id whose socket path cannot fit fails ENAMETOOLONG before anything is created', async (t) => {
  const root = scratch(t)
  const home = new HomeLayout({ home: path.join(root, 'home') })
  await home.prepare()
  const before = pathsBelow(root)
  const box = home.box('x'.repeat(100))
  const e = await t.throwsAsync(box.prepare(), { instanceOf: LayoutError })
  t.is(e.code, 'ENAMETOOLONG')
  t.is(e.path, box.sockets.netKrunSock)
  t.regex(e.message, /shorter box id \(at most \d+ bytes/)
  t.deepEqual(pathsBelow(root), before)
  t.false(fs.existsSync(box.sockets.bindingDir))
})

test('minted ids: 12 base62 characters, valid, distinct', (t) => {
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    const id = mintBoxId()
    t.regex(id, /^[0-9A-Za-z]{12}$/)
    t.true(BoxId.isValid(id))
    seen.add(id)
  }
  t.is(seen.size, 2000)
})

test('minted ids use the whole alphabet', (t) => {
  const chars = new Set(Array.from({ length: 400 }, () => BoxId.mint()).join(''))
  t.is(chars.size, 62)
})
