// CLI output: aligned tables for people, one stable JSON document for
// scripts (schemas in docs/cli-json/). Colour when stdout is a TTY or
// FORCE_COLOR asks for it, never when NO_COLOR is set.
import fs from 'node:fs'
import { LayoutError } from '../errors.ts'

export type Status = 'ok' | 'warn' | 'fail'

// eslint-disable-next-line no-control-regex -- matching the escape codes we emit is the point
const ANSI = /\u001b\[[0-9;]*m/g

const COLORS: Record<string, [number, number]> = {
  ok: [32, 39], warn: [33, 39], fail: [31, 39], bold: [1, 22], dim: [2, 22],
}

/** Where output goes: a file descriptor by default, any writer in tests. */
export interface TextSink {
  write (text: string): unknown
  isTTY?: boolean | (() => boolean)
}

export interface OutputOptions {
  json: boolean
  stdout?: TextSink
  stderr?: TextSink
  env?: NodeJS.ProcessEnv
}

/**
 * Writes straight to fd 1 or 2. Touching process.stdout would build a
 * stream (a pipe's is a net.Socket), loading Node's stream and net modules:
 * milliseconds of every call a jailer script makes. A reader that closes
 * the pipe early (`boxlite-layout doctor | head`) is not an error.
 */
function fdSink (fd: 1 | 2): TextSink {
  return {
    write (text: string) {
      const bytes = Buffer.from(text)
      for (let done = 0; done < bytes.length;) {
        try {
          done += fs.writeSync(fd, bytes, done)
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code
          if (code === 'EAGAIN') continue // a non-blocking pipe that is full: the reader will drain it
          if (code === 'EPIPE') process.exit(process.exitCode ?? 0)
          throw e
        }
      }
    },
    // Only a character device can be a terminal; pipes and files are told
    // apart by one fstat, without loading the tty module.
    isTTY: () => fs.fstatSync(fd).isCharacterDevice() && (fd === 1 ? process.stdout : process.stderr).isTTY === true,
  }
}

/** A usage error: bad arguments; exit code 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE'
}

function jsonReplacer (_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof LayoutError) return errorObject(value)
  return value
}

/** The JSON form of an error (docs/cli-json/error.schema.json). */
export function errorObject (e: unknown): Record<string, unknown> {
  if (e instanceof LayoutError) {
    return {
      code: e.code,
      reason: e.reason,
      message: e.message,
      ...(e.errno === undefined ? {} : { errno: e.errno }),
      ...(e.syscall === undefined ? {} : { syscall: e.syscall }),
      ...(e.path === undefined ? {} : { path: e.path }),
      ...(e.dest === undefined ? {} : { dest: e.dest }),
    }
  }
  if (e instanceof UsageError) return { code: e.code, reason: 'usage', message: e.message }
  const err = e as { message?: unknown }
  return { code: 'ERR_INTERNAL', reason: 'internal', message: String(err?.message ?? e) }
}

function colorWanted (sink: TextSink, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  const force = env.FORCE_COLOR
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false'
  return typeof sink.isTTY === 'function' ? sink.isTTY() : sink.isTTY === true
}

export class Output {
  readonly json: boolean
  readonly #stdout: TextSink
  readonly #stderr: TextSink
  readonly #env: NodeJS.ProcessEnv
  #color: boolean | undefined

  constructor (options: OutputOptions) {
    this.json = options.json
    this.#stdout = options.stdout ?? fdSink(1)
    this.#stderr = options.stderr ?? fdSink(2)
    this.#env = options.env ?? process.env
  }

  paint (style: string, text: string): string {
    const c = COLORS[style]
    // Decided on first use: JSON output never asks.
    this.#color ??= colorWanted(this.#stdout, this.#env)
    return this.#color && c !== undefined ? `\u001b[${c[0]}m${text}\u001b[${c[1]}m` : text
  }

  status (s: Status): string {
    return this.paint(s, s.toUpperCase().padEnd(4))
  }

  line (text = ''): void {
    this.#stdout.write(text + '\n')
  }

  /** A line for people on stderr (help after a usage error, progress). */
  note (text = ''): void {
    this.#stderr.write(text + '\n')
  }

  /**
   * A progress line on stderr, rewritten in place; only when stderr is a
   * terminal and the output is not JSON (false: nothing was shown). null
   * clears it.
   */
  progress (text: string | null): boolean {
    const sink = this.#stderr
    if (this.json || !(typeof sink.isTTY === 'function' ? sink.isTTY() : sink.isTTY === true)) return false
    sink.write(text === null ? '\r\u001b[K' : `\r\u001b[K${text}`)
    return true
  }

  /** The command's result: JSON in --json mode, else the human rendering. */
  result (data: unknown, human: () => void): void {
    if (this.json) this.#stdout.write(JSON.stringify(data, jsonReplacer, 2) + '\n')
    else human()
  }

  /** Columns padded to their widest cell; ANSI codes do not count. */
  table (header: string[], rows: string[][]): void {
    const visible = (s: string) => s.replace(ANSI, '').length
    const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))))
    const render = (cells: string[]) => cells.map((c, i) =>
      i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - visible(c))).join('  ').trimEnd()
    this.line(this.paint('bold', render(header)))
    for (const r of rows) this.line(render(r))
  }

  /** Two columns: key, value. */
  pairs (rows: Array<[string, string]>): void {
    const width = Math.max(...rows.map(([k]) => k.length))
    for (const [k, v] of rows) this.line(`${this.paint('dim', k.padEnd(width))}  ${v}`)
  }

  /** One line on stderr (human) or {"error": …} on stdout (--json). */
  error (e: unknown): void {
    this.printError(errorObject(e))
  }

  /** error() for an error already in its JSON form. */
  printError (obj: Record<string, unknown>): void {
    if (this.json) {
      this.#stdout.write(JSON.stringify({ error: obj }, jsonReplacer, 2) + '\n')
      return
    }
    const message = String(obj.message)
    const text = message.startsWith(`${String(obj.code)}: `) ? message : `${String(obj.code)}: ${message}`
    this.#stderr.write(`boxlite-layout: ${text.replace(/\n/g, ' ')}\n`)
  }
}

/** A shell word, quoted only when it needs to be. */
export function shellQuote (word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, '\'\\\'\'')}'`
}
