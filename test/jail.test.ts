// `boxlite-layout box jail` with the real bubblewrap: a shim compiled at test
// time, installed with installShim, run in BoxLite's sandbox policy, talks
// to the host over ready.sock through the /tmp/bl-{uid}/{id} link, writes
// where it may, is refused where it may not, and leaves shim.pid and an exit
// record. In a private mount namespace: it uses this uid's real link dir.
import { needs, testWith } from './helpers/env.ts'
import { inPrivateNamespace, lastJson } from './helpers/private-ns.ts'

interface Report {
  mounted: string
  installed: string[]
  code: number
  reply: string
  results: { pid: number, console: string, tmp: string, basesRead: boolean, denied: Record<string, string> }
  pidFile: string
  exit: { type: string, exitCode: number } | null
  console: string
  deniedOnHost: string[]
}

testWith([needs.linux, needs.root, needs.tool('bwrap', 'bubblewrap'), needs.tool('cc', 'gcc'), needs.tool('unshare', 'util-linux')],
  'box jail: the shim binds ready.sock, writes logs/ and tmp/, reads bases/, cannot write bin/, mounts/, another box, bases/, /etc; exit 7 recorded',
  async (t) => {
    t.timeout(300_000)
    const r = await inPrivateNamespace('test/fixtures/jail.ts', [])
    const o = lastJson<Report>(t, r)
    t.is(o.mounted, 'bind-ro')
    t.is(o.reply, 'pong:ping', 'the host reached the jailed shim through the socket link')
    t.is(o.code, 7, 'the CLI exits with the command\'s code')
    t.is(o.results.console, 'ok')
    t.is(o.results.tmp, 'ok')
    t.true(o.results.basesRead)
    t.is(o.console, 'shim console\n', 'logs/console.log written from inside the jail')
    const denied = Object.entries(o.results.denied)
    t.is(denied.length, 5)
    for (const [p, errno] of denied) t.true(['EROFS', 'EACCES', 'ENOENT'].includes(errno), `${p}: ${errno}`)
    t.deepEqual(o.deniedOnHost, [], 'nothing appeared on the host where writes were refused')
    const [pid, startTime] = o.pidFile.split('\n')
    t.is(Number(pid), o.results.pid, 'shim.pid names the jailed process')
    t.regex(startTime!, /^[0-9]+$/, 'with its start-time fingerprint')
    t.like(o.exit, { type: 'error', exitCode: 7 })
  })
