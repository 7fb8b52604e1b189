// One LayoutError, shaped like Node's fs errors, with a typed reason.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { cloneFileSync, HomeLayout, LayoutError } from '../lib/index.ts'
import { binding } from '../lib/native.ts'
import { scratch } from './helpers/fixtures.ts'

test('native errors become LayoutError with code, negative errno, syscall, path, dest', (t) => {
  const dir = scratch(t)
  const e = t.throws(() => cloneFileSync(path.join(dir, 'nope'), path.join(dir, 'dst')), { instanceOf: LayoutError })
  t.true(e instanceof Error)
  t.is(e.name, 'LayoutError')
  t.is(e.code, 'ENOENT')
  t.is(e.errno, -2)
  t.is(e.syscall, 'open')
  t.is(e.path, path.join(dir, 'nope'))
  t.is(e.reason, 'syscall-failed')
  t.regex(e.message, /^ENOENT: cannot install the file: no such file or directory, open '.*nope'/)
})

test('messages tell a person what to do', (t) => {
  const dir = scratch(t)
  fs.writeFileSync(path.join(dir, 'file'), '')
  const home = new HomeLayout({ home: path.join(dir, 'file', 'home') })
  const e = t.throws(() => home.prepareSync(), { instanceOf: LayoutError })
  t.is(e.code, 'ENOTDIR')
  t.is(e.syscall, 'mkdir')
  t.true(e.message.includes('cannot prepare the BoxLite home'))
  t.false(fs.existsSync(path.join(dir, 'file', 'home')))
})

test('argument errors are ERR_INVALID_ARG without errno', (t) => {
  const e = t.throws(() => new HomeLayout({ home: 'relative' }), { instanceOf: LayoutError })
  t.is(e.code, 'ERR_INVALID_ARG')
  t.is(e.reason, 'invalid-argument')
  t.is(e.errno, undefined)
  t.is(e.syscall, undefined)
})

test('the raw binding rejects bad arguments with one TypeError; a throwing getter\'s own error comes through', (t) => {
  const b = binding() as any
  t.throws(() => b.probe(42), { instanceOf: TypeError, message: /expected a string/ })
  t.throws(() => b.probe('a\0b'), { instanceOf: TypeError, message: /NUL/ })
  const boom = new Error('getter says no')
  const paths = ['/']
  Object.defineProperty(paths, 1, { get () { throw boom }, enumerable: true })
  t.is(t.throws(() => b.sameFilesystem(paths)), boom)
  t.throws(() => b.cloneFile('/a', '/b', 'sideways'), { instanceOf: TypeError, message: /auto, force or never/ })
  t.throws(() => b.lockAcquire('/a', '', 1.5, true), { instanceOf: TypeError, message: /integer/ })
  t.throws(() => b.boxPrepareAsync('/h', 'boxes'), { instanceOf: TypeError, message: /expected a string/ })
  t.is(typeof b.probe('/').fsName, 'string', 'the binding still works afterwards')
})

// The core names its reasons in one switch (reason_name); every name except
// the internal would-block must be a member of LayoutErrorReason, or a
// script switching on error.reason would meet a value its type never said.
test('every reason the native core can report is a LayoutErrorReason', (t) => {
  const root = new URL('../', import.meta.url)
  const core = fs.readFileSync(new URL('native/core/posix/common.cc', root), 'utf8')
  // The body of reason_name alone: from its signature to the first closing brace at column 0.
  const start = core.indexOf('reason_name(Reason r)')
  const body = core.slice(start, core.indexOf('\n}', start))
  const names = [...body.matchAll(/return "([a-z-]+)";/g)].map((m) => m[1])
  const facade = fs.readFileSync(new URL('lib/errors.ts', root), 'utf8')
  const union = facade.slice(facade.indexOf('export type LayoutErrorReason'), facade.indexOf('export type LayoutErrorCode'))
  const members = new Set([...union.matchAll(/\| '([a-z-]+)'/g)].map((m) => m[1]))
  t.true(names.length >= 25, `found ${names.length} reasons in the core`)
  t.deepEqual(names.filter((n) => n !== 'would-block' && !members.has(n)), [])
})
