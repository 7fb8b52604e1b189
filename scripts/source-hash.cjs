#!/usr/bin/env node
// Prints the SHA-256 of the native sources an addon is built from. The build
// bakes it into the binary (BLX_SOURCE_HASH) and the tests compare it with
// the sources on disk, so a stale prebuild cannot pass unnoticed.
'use strict'
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

function sourceFiles () {
  const out = []
  const walk = (dir) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, entry.name)
      if (entry.isDirectory()) {
        if (rel !== 'native/test' && rel !== 'native/fuzz') walk(rel)
      } else if (/\.(cc|h|json)$/.test(entry.name)) {
        out.push(rel)
      }
    }
  }
  walk('native')
  return out.sort()
}

function sourceHash () {
  const hash = crypto.createHash('sha256')
  for (const rel of sourceFiles()) {
    hash.update(rel + '\0')
    hash.update(fs.readFileSync(path.join(root, rel)))
    hash.update('\0')
  }
  return hash.digest('hex').slice(0, 32)
}

module.exports = { sourceHash, sourceFiles }

if (require.main === module) process.stdout.write(sourceHash())
