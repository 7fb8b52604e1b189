// N boxes prepared and cleaned up without a mount, through dist/, for
// `strace -c -f`: the bench runs it at two N and divides the difference, so
// start-up and warm-up cancel out and what is left is the calls per box.
//
//   node --import tsx bench/trace/prepare-cleanup.ts HOME UID N sync|async
import type * as Api from '../../lib/index.ts'
import { prepareCleanupBatch } from '../lib/batches.ts'

const [home, uid, n, form] = process.argv.slice(2)
const api = await import(new URL('../../dist/index.js', import.meta.url).href) as typeof Api
await prepareCleanupBatch(api, new api.HomeLayout({ home: home! }), Number(n), form === 'async' ? 'async' : 'sync', Number(uid))
