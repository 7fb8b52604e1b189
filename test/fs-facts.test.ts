// Filesystem facts: probe() and sameFilesystem() on real filesystems.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { makeDev } from '../lib/fs-facts.ts'
import { LayoutError, probe, probeSync, sameFilesystem, sameFilesystemSync } from '../lib/index.ts'
import { needs, privileged, testWith } from './helpers/env.ts'
import { mountLoopFs, mountTmpfs, scratch } from './helpers/fixtures.ts'
import { mountAt } from './helpers/mounts.ts'

test('probe: a plain directory on the root filesystem', async (t) => {
  const dir = scratch(t)
  const f = await probe(dir)
  t.is(f.dev, fs.statSync(dir).dev, 'dev as Node reports it')
  t.false(f.isMountRoot)
  t.false(f.readOnly)
  t.is(typeof f.fsType.name, 'string')
  t.false(f.fsType.name.startsWith('unknown'), `named filesystem, got ${f.fsType.name}`)
  t.deepEqual(probeSync(dir), f)
})

test('probe: / is a mount root', (t) => {
  t.true(probeSync('/').isMountRoot)
})

test('probe: a missing path is ENOENT with errno, syscall and path', async (t) => {
  const missing = path.join(scratch(t), 'missing')
  const e = await t.throwsAsync(probe(missing), { instanceOf: LayoutError })
  t.is(e.code, 'ENOENT')
  t.is(e.errno, -2)
  t.is(e.syscall, 'statx')
  t.is(e.path, missing)
  t.true(e.message.startsWith('ENOENT: '))
  t.true(e.message.includes(`statx '${missing}'`))
  t.throws(() => probeSync(missing), { code: 'ENOENT' })
})

test('probe and sameFilesystem reject bad input', async (t) => {
  await t.throwsAsync(probe(''), { code: 'ERR_INVALID_ARG' })
  await t.throwsAsync(sameFilesystem([]), { code: 'ERR_INVALID_ARG' })
  t.throws(() => sameFilesystemSync(['/tmp', '']), { code: 'ERR_INVALID_ARG' })
})

privileged('probe: tmpfs flags, magic, mount root and mount id', async (t) => {
  const dir = mountTmpfs(t, path.join(scratch(t), 'ro'), 'ro,nosuid,nodev,noexec,size=4m')
  const f = await probe(dir)
  t.is(f.fsType.name, 'tmpfs')
  t.is(f.fsType.magic, 0x01021994)
  t.true(f.readOnly)
  t.true(f.nosuid)
  t.true(f.nodev)
  t.true(f.noexec)
  t.true(f.isMountRoot)
  t.is(f.mountId, BigInt(mountAt(dir)!.id))
  const plain = mountTmpfs(t, path.join(scratch(t), 'rw'), 'size=4m')
  fs.mkdirSync(path.join(plain, 'sub'))
  const sub = probeSync(path.join(plain, 'sub'))
  t.false(sub.readOnly)
  t.false(sub.nosuid)
  t.false(sub.isMountRoot)
  t.is(sub.mountId, BigInt(mountAt(plain)!.id))
})

testWith([needs.linux, needs.mount, needs.tool('mkfs.xfs', 'xfsprogs')], 'probe names xfs and ext4 on real loop filesystems', async (t) => {
  const root = scratch(t)
  const xfs = mountLoopFs(t, path.join(root, 'xfs'), 'xfs')
  const ext4 = mountLoopFs(t, path.join(root, 'ext4'), 'ext4', 64)
  t.is((await probe(xfs)).fsType.name, 'xfs')
  t.is((await probe(xfs)).fsType.magic, 0x58465342)
  t.is(probeSync(ext4).fsType.name, 'ext4')
  t.is(probeSync(ext4).fsType.magic, 0xef53)
})

test('sameFilesystem: one filesystem', async (t) => {
  const dir = scratch(t)
  fs.mkdirSync(path.join(dir, 'a'))
  const r = await sameFilesystem([dir, path.join(dir, 'a')])
  t.true(r.same)
  t.is(r.odd, null)
  t.is(r.devices.length, 2)
  t.is(r.devices[0], r.devices[1])
})

privileged('sameFilesystem names the odd one out (by majority), in one call', async (t) => {
  const dir = scratch(t)
  for (const d of ['tmp', 'bases', 'disk-images']) fs.mkdirSync(path.join(dir, d))
  mountTmpfs(t, path.join(dir, 'tmp'))
  const paths = ['tmp', 'bases', 'disk-images'].map((d) => path.join(dir, d))
  const r = await sameFilesystem(paths)
  t.false(r.same)
  t.is(r.odd?.index, 0)
  t.is(r.odd?.path, paths[0])
  t.regex(r.odd!.device, /^\d+:\d+$/)
  t.not(r.devices[0], r.devices[1])
  t.deepEqual(sameFilesystemSync(paths), r)
  const other = sameFilesystemSync([paths[1]!, paths[2]!, paths[0]!])
  t.is(other.odd?.path, paths[0])
})

// Models of what Node reports, from the C types: glibc's makedev on Linux; on
// macOS an int32 dev_t (major << 24 | minor) that libuv sign-extends into its
// u64 st_dev, which Node turns into a double.
function linuxDev (major: bigint, minor: bigint): number {
  return Number(((major & 0xfffn) << 8n) | ((major & 0xfffff000n) << 32n) | (minor & 0xffn) | ((minor & 0xffffff00n) << 12n))
}
function darwinDev (major: bigint, minor: bigint): number {
  return Number(BigInt.asUintN(64, BigInt.asIntN(32, (major << 24n) | minor)))
}

test('makeDev gives st_dev as Node reports it, for every major (macOS majors of 128 and more included)', (t) => {
  const pairs: Array<[number, number]> = [[0, 0], [1, 17], [8, 1], [127, 0xffffff], [128, 0], [200, 5], [255, 0xffffff], [259, 0xfffff], [4095, 1048575]]
  for (const [major, minor] of pairs) {
    if (major < 256 && minor <= 0xffffff) {
      const d = makeDev(major, minor, 'darwin')
      t.is(d, darwinDev(BigInt(major), BigInt(minor)), `darwin ${major}:${minor}`)
      t.true(d >= 0, `darwin ${major}:${minor} is not negative`)
    }
    t.is(makeDev(major, minor, 'linux'), linuxDev(BigInt(major), BigInt(minor)), `linux ${major}:${minor}`)
  }
  // Distinct devices stay distinct: 128:0 is not 0:0 or -2^31.
  t.not(makeDev(128, 0, 'darwin'), makeDev(0, 0, 'darwin'))
})
