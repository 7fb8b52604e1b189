// Homes and boxes for tests, and the child-process runner of box-op.ts.
import type { ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { BoxLayout, HomeLayout, mintBoxId, socketLinkParent, type BoxLayoutOptions } from '../../lib/index.ts'
import { repoRoot, run, scratch, tsNode } from './fixtures.ts'

/** A prepared home in a scratch dir (removed, mounts first, at teardown). */
export function freshHome (t: ExecutionContext, root: string = scratch(t)): HomeLayout {
  const home = new HomeLayout({ home: path.join(root, 'home') })
  home.prepareSync()
  return home
}

/** A box with a fresh id whose socket link is removed at teardown. */
export function freshBox (t: ExecutionContext, home: HomeLayout, options: Omit<BoxLayoutOptions, 'bindMounts'> = { isolateMounts: true }): BoxLayout {
  const box = home.box(mintBoxId(), options)
  t.teardown(() => {
    try { box.sockets.removeSync() } catch { /* the test may have squatted /tmp/bl-{uid} */ }
  })
  return box
}

/** Fake uids for socket links: far from real users, one range for every test. */
const FAKE_UID_FIRST = 40000
const FAKE_UID_COUNT = 25000

/**
 * A uid no other test uses, so /tmp/bl-{uid} is this test's alone (other
 * tests sweep the real one concurrently). The uid is claimed by making
 * /tmp/blx-uid-{uid}: mkdir is atomic, so two tests (in this run or in
 * another run on the machine) never get the same one. A /tmp/bl-{uid} left
 * by a killed run is removed first; at teardown the link dir goes, then the
 * claim.
 */
export function privateLinkUid (t: ExecutionContext): number {
  for (;;) {
    const uid = FAKE_UID_FIRST + Math.floor(Math.random() * FAKE_UID_COUNT)
    const claim = `/tmp/blx-uid-${uid}`
    try {
      fs.mkdirSync(claim, { mode: 0o700 })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue
      throw e
    }
    t.teardown(() => {
      fs.rmSync(socketLinkParent(uid), { recursive: true, force: true })
      fs.rmdirSync(claim)
    })
    fs.rmSync(socketLinkParent(uid), { recursive: true, force: true })
    return uid
  }
}

/**
 * The uid a test's box links under: as root a private one (privateLinkUid),
 * otherwise our own (only root can make another user's /tmp/bl-{uid}).
 */
export function testLinkUid (t: ExecutionContext): number {
  return process.getuid?.() === 0 ? privateLinkUid(t) : process.getuid!()
}

export interface BoxOpSpec {
  home: string
  boxId: string
  isolateMounts?: boolean
  ops: string[]
  api?: 'auto' | 'legacy'
  require?: 'any' | 'read-only'
  shim?: string
  hold?: boolean
  /** Run the ops this many times (-1: until killed). */
  repeat?: number
  /** Print only failures (for long loops). */
  quiet?: boolean
}

export interface BoxOpStep {
  op: string
  ok: boolean
  result?: any
  code?: string
  message?: string
}

export type Wrapper = 'none' | 'userns'

function command (wrapper: Wrapper, spec: BoxOpSpec): [string, string[]] {
  const node = [process.execPath, ...tsNode('test/fixtures/box-op.ts', JSON.stringify(spec))]
  return wrapper === 'userns' ? ['unshare', ['-Urm', ...node]] : [node[0]!, node.slice(1)]
}

/** The JSON step lines box-op.ts printed. */
export function parseBoxOpSteps (stdout: string): BoxOpStep[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as BoxOpStep)
}

/** Run box-op.ts to completion and return its steps. */
export async function runBoxOps (spec: BoxOpSpec, wrapper: Wrapper = 'none', env: NodeJS.ProcessEnv = {}): Promise<{ steps: BoxOpStep[], stderr: string, code: number | null }> {
  const [cmd, args] = command(wrapper, spec)
  const r = await run(cmd, args, { cwd: repoRoot, env: { ...process.env, ...env } })
  return { steps: parseBoxOpSteps(r.stdout), stderr: r.stderr, code: r.code }
}

/** Start box-op.ts with hold: resolves once it printed READY; kill it yourself. */
export function startHeldBoxOps (t: ExecutionContext, spec: BoxOpSpec): Promise<{ pid: number, steps: BoxOpStep[], kill: () => Promise<void> }> {
  const [cmd, args] = command('none', { ...spec, hold: true })
  const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(kill)
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('READY\n')) resolve({ pid: child.pid!, steps: parseBoxOpSteps(out), kill })
    })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.once('exit', (code) => reject(new Error(`box-op exited (${String(code)}) before READY: ${err}`)))
  })
}
