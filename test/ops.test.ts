// Each native operation is declared once in C++ (its registration in
// binding.cc) and once in TypeScript (NativeBoxOps / NativeHomeOps in
// lib/native.ts); these tests fail on any drift between the two
// (docs/design.md, "One declaration per operation"): the binding's exports
// are exactly the TS op list, each as name and nameAsync, and a real result
// of every op that returns an object has exactly the keys its TS type
// names, at every depth. The TS side is read with the TypeScript compiler,
// so no shape is written a second time here.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { binding } from '../lib/native.ts'
import { mintBoxId } from '../lib/ids.ts'
import { repoRoot, scratch, writeShimSet } from './helpers/fixtures.ts'

const nativeFile = path.join(repoRoot, 'lib', 'native.ts')
const program = ts.createProgram([nativeFile], {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  allowImportingTsExtensions: true,
  noEmit: true,
  strict: true,
})
const checker = program.getTypeChecker()
const source = program.getSourceFile(nativeFile)!

function declaration (name: string): ts.InterfaceDeclaration {
  const found = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name)
  if (found === undefined) throw new Error(`lib/native.ts declares no interface ${name}`)
  return found
}

function memberNames (name: string): string[] {
  return declaration(name).members.map((m) => (m.name as ts.Identifier).text)
}

/** Each op's declared result type, by name. */
function resultTypes (name: string): Map<string, ts.Type> {
  return new Map(declaration(name).members.filter(ts.isMethodSignature).map((m) =>
    [(m.name as ts.Identifier).text, checker.getReturnTypeOfSignature(checker.getSignatureFromDeclaration(m)!)]))
}

const BOX_OPS = memberNames('NativeBoxOps')
const HOME_OPS = memberNames('NativeHomeOps')
const OPS = [...BOX_OPS, ...HOME_OPS]

test('the TS op list is read from lib/native.ts, box ops and the rest apart', (t) => {
  t.true(BOX_OPS.includes('boxPrepare') && BOX_OPS.includes('sharedMount'), BOX_OPS.join(', '))
  t.true(HOME_OPS.includes('homePrepare') && HOME_OPS.includes('gcScan'), HOME_OPS.join(', '))
  t.deepEqual(BOX_OPS.filter((o) => HOME_OPS.includes(o)), [])
})

test("the binding's exports are exactly the TS ops, each as name and nameAsync, plus NativeBinding's own members", (t) => {
  const own = memberNames('NativeBinding')
  const expected = [...OPS.flatMap((o) => [o, `${o}Async`]), ...own].sort()
  const actual = Object.keys(binding()).sort()
  t.deepEqual(actual.filter((k) => !expected.includes(k)), [], 'exported by the binding, missing from lib/native.ts')
  t.deepEqual(expected.filter((k) => !actual.includes(k)), [], 'declared in lib/native.ts, not exported by the binding')
  for (const op of OPS) {
    t.is(typeof (binding() as unknown as Record<string, unknown>)[op], 'function', op)
    t.is(typeof (binding() as unknown as Record<string, unknown>)[`${op}Async`], 'function', `${op}Async`)
  }
})

/** The alternatives of a union (one type otherwise), null and undefined left out. */
function alternatives (type: ts.Type): ts.Type[] {
  const all = type.isUnion() ? type.types : [type]
  return all.filter((a) => (a.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined)) === 0)
}

/** Where value's keys differ from type's, at every depth ("path: extra x, missing y"). */
function keyDrift (value: unknown, type: ts.Type, at: string): string[] {
  if (value === null || typeof value !== 'object') return []
  const alts = alternatives(type)
  if (Array.isArray(value)) {
    const arrays = alts.filter((a) => checker.isArrayType(a) || checker.isTupleType(a))
    if (arrays.length === 0) return [`${at}: an array where the type has none`]
    return value.flatMap((v, i) => {
      const a = arrays[0]!
      const element = checker.isTupleType(a)
        ? checker.getTypeArguments(a as ts.TypeReference)[i]
        : checker.getIndexTypeOfType(a, ts.IndexKind.Number)
      return element === undefined ? [`${at}[${i}]: beyond the tuple`] : keyDrift(v, element, `${at}[${i}]`)
    })
  }
  const objects = alts.filter((a) => (a.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) !== 0 && !checker.isArrayType(a))
  if (objects.length === 0) return [`${at}: an object where the type has none`]
  const keys = Object.keys(value).sort()
  const drifts: string[][] = []
  for (const o of objects) {
    const index = checker.getIndexTypeOfType(o, ts.IndexKind.String)
    if (index !== undefined) {
      return Object.entries(value).flatMap(([k, v]) => keyDrift(v, index, `${at}.${k}`))
    }
    const props = checker.getPropertiesOfType(o)
    const names = props.map((p) => p.name).sort()
    const extra = keys.filter((k) => !names.includes(k))
    const missing = names.filter((k) => !keys.includes(k))
    if (extra.length === 0 && missing.length === 0) {
      return props.flatMap((p) => keyDrift((value as Record<string, unknown>)[p.name], checker.getTypeOfSymbol(p), `${at}.${p.name}`))
    }
    drifts.push([`${at}: extra [${extra.join(', ')}], missing [${missing.join(', ')}]`])
  }
  return drifts[0]!
}

test('a real result of every op that returns an object has exactly the keys of its TS type, at every depth', (t) => {
  if (process.platform !== 'linux') {
    t.pass('the scratch lifecycle below is Linux-only (bind mounts)')
    return
  }
  const b = binding()
  const root = scratch(t)
  const home = path.join(root, 'home')
  const id = mintBoxId()
  const box = [home, 'boxes', id] as const
  const link = [path.join(root, 'bl'), process.getuid!(), path.join(home, 'boxes', id, 'sockets')] as const
  const shim = writeShimSet(path.join(root, 'shim'))
  fs.writeFileSync(path.join(root, 'src'), 'x'.repeat(4096))
  const results = new Map<string, unknown>()
  results.set('homePrepare', b.homePrepare(home))
  results.set('homeDevices', b.homeDevices(home))
  results.set('probe', b.probe(home))
  results.set('sameFilesystem', b.sameFilesystem([home, root]))
  results.set('imagesPrepare', b.imagesPrepare(home, 'images'))
  results.set('cloneFile', b.cloneFile(path.join(root, 'src'), path.join(root, 'dst'), 'auto'))
  results.set('boxPrepare', b.boxPrepare(...box, true, ...link))
  t.teardown(() => { b.boxCleanup(...box, ...link, false) })
  results.set('sharedMount', b.sharedMount(...box, false, false))
  results.set('sharedInspect', b.sharedInspect(...box, true))
  results.set('shimInstall', b.shimInstall(...box, shim, 'auto'))
  results.set('boxStageVolumeFile', b.boxStageVolumeFile(...box, true, path.join(root, 'src'), 0, true))
  fs.writeFileSync(path.join(root, 'kernel'), 'k'.repeat(4096))
  fs.writeFileSync(path.join(root, 'initramfs'), 'i'.repeat(4096))
  results.set('bootPublish', b.bootPublish(...box, path.join(root, 'kernel'), path.join(root, 'initramfs'), false, 'raw'))
  results.set('bootRead', b.bootRead(...box))
  const prepared = b.shimPrepare(...box, ...link)
  fs.closeSync(prepared.stderrFd)
  results.set('shimPrepare', prepared)
  results.set('socketLinkEnsure', b.socketLinkEnsure(...link, id))
  fs.writeFileSync(path.join(home, 'boxes', id, 'shim.pid'), `${process.pid}\n`)
  results.set('pidRead', b.pidRead(home, `boxes/${id}`, 'shim.pid'))
  results.set('boxInspect', b.boxInspect(...box, ...link, ['box.sock']))
  results.set('boxPolicyFacts', b.boxPolicyFacts(...box, [root], [], true))
  results.set('listBoxes', b.listBoxes(home, 'boxes'))
  results.set('gcScan', b.gcScan(home, ...link))
  results.set('diskUsage', b.diskUsage(home, null))
  fs.writeFileSync(path.join(home, 'bases', 'orphan.ext4'), 'b'.repeat(4096))
  const storage = b.storageScan(home)
  t.is(storage.files.length, 1, 'the stored file is scanned, so its keys are checked')
  results.set('storageScan', storage)
  results.set('socketLinksSweep', b.socketLinksSweep(...link, true))
  fs.writeFileSync(path.join(home, 'tmp', 'leftover'), '')
  results.set('gcRemove', b.gcRemove(home, 'tmp', 'leftover'))
  fs.rmSync(path.join(home, 'boxes', id, 'shim.pid'))
  results.set('boxCleanup', b.boxCleanup(...box, ...link, true))

  const declared = new Map([...resultTypes('NativeBoxOps'), ...resultTypes('NativeHomeOps')])
  // Every op whose declared result can hold an object is driven above.
  const objectOps = OPS.filter((op) => alternatives(declared.get(op)!).some((a) => (a.flags & ts.TypeFlags.Object) !== 0 &&
    // gcUnmount's per-mount results need a leaked mount: test/cleanup-gc.test.ts makes them.
    op !== 'gcUnmount'))
  t.deepEqual(objectOps.filter((op) => !results.has(op)), [], 'ops returning objects that this test does not drive')
  for (const [op, value] of results) {
    t.deepEqual(keyDrift(value, declared.get(op)!, op), [], `${op}: ${JSON.stringify(value, (_k, v: unknown) => typeof v === 'bigint' ? String(v) : v)}`)
  }
})
