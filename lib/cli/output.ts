// CLI output: aligned tables for people, one stable JSON document for
// scripts. Colour only on a TTY, and never when NO_COLOR is set.
import type { Writable } from 'node:stream'
import { LayoutError } from '../errors.ts'

export type Status = 'ok' | 'warn' | 'fail'

const COLORS: Record<string, [number, number]> = {
  ok: [32, 39], warn: [33, 39], fail: [31, 39], bold: [1, 22], dim: [2, 22],
}

export interface OutputOptions {
  json: boolean
  stdout?: Writable & { isTTY?: boolean }
  stderr?: Writable & { isTTY?: boolean }
  env?: NodeJS.ProcessEnv
}

function jsonReplacer (_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof LayoutError) return errorObject(value)
  return value
}

export function errorObject (e: unknown): Record<string, unknown> {
  if (e instanceof LayoutError) {
    return {
      code: e.code,
      message: e.message,
      ...(e.errno === undefined ? {} : { errno: e.errno }),
      ...(e.syscall === undefined ? {} : { syscall: e.syscall }),
      ...(e.path === undefined ? {} : { path: e.path }),
      ...(e.dest === undefined ? {} : { dest: e.dest }),
    }
  }
  const err = e as { code?: unknown, message?: unknown }
  return { code: typeof err?.code === 'string' ? err.code : 'ERR_INTERNAL', message: String(err?.message ?? e) }
}

export class Output {
  readonly json: boolean
  readonly #stdout: Writable & { isTTY?: boolean }
  readonly #stderr: Writable & { isTTY?: boolean }
  readonly #color: boolean

  constructor (options: OutputOptions) {
    this.json = options.json
    this.#stdout = options.stdout ?? process.stdout
    this.#stderr = options.stderr ?? process.stderr
    const env = options.env ?? process.env
    this.#color = this.#stdout.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '')
  }

  paint (style: string, text: string): string {
    const c = COLORS[style]
    return this.#color && c !== undefined ? `\u001b[${c[0]}m${text}\u001b[${c[1]}m` : text
  }

  status (s: Status): string {
    return this.paint(s, s.toUpperCase().padEnd(4))
  }

  line (text = ''): void {
    this.#stdout.write(text + '\n')
  }

  /** The command's result: JSON in --json mode, else the human rendering. */
  result (data: unknown, human: () => void): void {
    if (this.json) this.#stdout.write(JSON.stringify(data, jsonReplacer, 2) + '\n')
    else human()
  }

  /** Columns padded to their widest cell; ANSI codes do not count. */
  table (header: string[], rows: string[][]): void {
    const visible = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length
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
    const obj = errorObject(e)
    if (this.json) {
      this.#stdout.write(JSON.stringify({ error: obj }, jsonReplacer, 2) + '\n')
      return
    }
    const message = String(obj.message)
    const text = message.startsWith(`${String(obj.code)}: `) ? message : `${String(obj.code)}: ${message}`
    this.#stderr.write(`boxlite-layout: ${text.replace(/\n/g, ' ')}\n`)
  }
}

export function ms (start: bigint): string {
  return (Number(process.hrtime.bigint() - start) / 1e6).toFixed(2)
}
