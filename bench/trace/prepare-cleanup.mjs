// N boxes prepared and cleaned up without a mount, through dist/, for
// `strace -c -f`: the bench runs it at two N and divides the difference, so
// start-up and warm-up cancel out and what is left is the calls per box.
//
//   node bench/trace/prepare-cleanup.mjs HOME UID N sync|async
import * as api from '../../dist/index.js'
import { prepareCleanupBatch } from '../lib/batches.mjs'

const [home, uid, n, form] = process.argv.slice(2)
await prepareCleanupBatch(api, new api.HomeLayout({ home }), Number(n), form === 'async' ? 'async' : 'sync', Number(uid))
