// A small reader for SBPL, the S-expression language of macOS seatbelt
// profiles, and the checks every profile the package generates must pass
// (there is no macOS here to load them): it reads whole (balanced, nothing
// left over), every string escape is one SBPL knows and no raw control
// character sits in a string, every rule is (version …), (deny …) or
// (allow OP… FILTER…), and no rule that needs a filter goes without one:
// an unfiltered (allow file-write*) would allow every write.

export type Sexpr =
  | { kind: 'list', items: Sexpr[] }
  | { kind: 'atom', value: string }
  | { kind: 'string', value: string }
  | { kind: 'regex', value: string }

const ESCAPES: Record<string, string> = { '\\': '\\', '"': '"', n: '\n', t: '\t', r: '\r' }

/** Read every top-level form; throws (with the offset) on anything malformed. */
export function readSbpl (text: string): Sexpr[] {
  let i = 0
  const fail = (why: string): never => { throw new Error(`${why} at offset ${i}`) }
  const skip = () => {
    for (;;) {
      if (/\s/.test(text[i] ?? '')) i++
      else if (text[i] === ';') { while (i < text.length && text[i] !== '\n') i++ } else return
    }
  }
  const str = (): string => {
    i++ // the opening quote
    let out = ''
    for (;;) {
      const ch = text[i++]
      if (ch === undefined) fail('unterminated string')
      if (ch === '"') return out
      // eslint-disable-next-line no-control-regex
      if (/[\x00-\x1f\x7f]/.test(ch!)) fail('raw control character in a string')
      if (ch === '\\') {
        const e = ESCAPES[text[i++] ?? '']
        if (e === undefined) fail('unknown escape in a string')
        out += e
      } else {
        out += ch
      }
    }
  }
  const form = (): Sexpr => {
    skip()
    const ch = text[i]
    if (ch === undefined) fail('unexpected end')
    if (ch === ')') fail('unbalanced )')
    if (ch === '(') {
      i++
      const items: Sexpr[] = []
      for (;;) {
        skip()
        if (text[i] === undefined) fail('unbalanced (')
        if (text[i] === ')') { i++; return { kind: 'list', items } }
        items.push(form())
      }
    }
    if (ch === '"') return { kind: 'string', value: str() }
    if (ch === '#' && text[i + 1] === '"') { i++; return { kind: 'regex', value: str() } }
    const m = /^[^\s()";]+/.exec(text.slice(i))
    if (m === null) fail(`unexpected ${JSON.stringify(ch)}`)
    i += m![0].length
    return { kind: 'atom', value: m![0] }
  }
  const forms: Sexpr[] = []
  for (;;) {
    skip()
    if (i >= text.length) return forms
    forms.push(form())
  }
}

/** Operations a profile may allow without a filter (they are not about paths or names). */
const UNFILTERED_OK = new Set(['process-exec', 'process-fork', 'ipc-posix-sem', 'pseudo-tty', 'network-outbound', 'network-inbound', 'system-socket'])
const PATH_FILTERS = new Set(['literal', 'subpath'])
const NAME_FILTERS = new Set(['sysctl-name', 'sysctl-name-prefix', 'global-name', 'iokit-registry-entry-class', 'extension', 'vnode-type', 'target'])

function show (e: Sexpr): string {
  if (e.kind === 'list') return `(${e.items.map(show).join(' ')})`
  return e.kind === 'atom' ? e.value : JSON.stringify(e.value)
}

function checkFilter (f: Sexpr, problems: string[]): void {
  if (f.kind !== 'list' || f.items[0]?.kind !== 'atom') { problems.push(`not a filter: ${show(f)}`); return }
  const [head, ...args] = f.items as [{ kind: 'atom', value: string }, ...Sexpr[]]
  if (head.value === 'require-all' || head.value === 'require-any') {
    if (args.length === 0) problems.push(`empty ${head.value}`)
    for (const a of args) checkFilter(a, problems)
  } else if (PATH_FILTERS.has(head.value)) {
    const [arg] = args
    const param = arg?.kind === 'list' && arg.items.length === 2 && show(arg.items[0]!) === 'param' && arg.items[1]!.kind === 'string'
    if (args.length !== 1 || !(param || (arg!.kind === 'string' && arg!.value.startsWith('/')))) {
      problems.push(`${head.value} needs one absolute path: ${show(f)}`)
    }
  } else if (head.value === 'regex') {
    if (args.length !== 1 || args[0]!.kind !== 'regex') problems.push(`regex needs one #"…": ${show(f)}`)
  } else if (NAME_FILTERS.has(head.value)) {
    if (args.length !== 1 || (args[0]!.kind !== 'string' && args[0]!.kind !== 'atom') || (args[0] as { value: string }).value === '') {
      problems.push(`${head.value} needs one name: ${show(f)}`)
    }
  } else {
    problems.push(`unknown filter ${head.value}`)
  }
}

/** What is wrong with a generated profile; empty when nothing is. */
export function profileProblems (text: string): string[] {
  let forms: Sexpr[]
  try {
    forms = readSbpl(text)
  } catch (e) {
    return [(e as Error).message]
  }
  const problems: string[] = []
  if (show(forms[0] ?? { kind: 'atom', value: '' }) !== '(version 1)') problems.push('does not start with (version 1)')
  if (show(forms[1] ?? { kind: 'atom', value: '' }) !== '(deny default)') problems.push('(deny default) is not second')
  for (const f of forms.slice(2)) {
    if (f.kind !== 'list' || show(f.items[0] ?? { kind: 'atom', value: '' }) !== 'allow') { problems.push(`not an allow rule: ${show(f)}`); continue }
    const rest = f.items.slice(1)
    const ops = rest.filter((x) => x.kind === 'atom').map((x) => (x as { value: string }).value)
    const filters = rest.filter((x) => x.kind !== 'atom')
    if (ops.length === 0) problems.push(`allow without an operation: ${show(f)}`)
    if (rest.findIndex((x) => x.kind !== 'atom') !== -1 && rest.slice(rest.findIndex((x) => x.kind !== 'atom')).some((x) => x.kind === 'atom')) {
      problems.push(`operation after a filter: ${show(f)}`)
    }
    if (filters.length === 0 && ops.some((op) => !UNFILTERED_OK.has(op))) problems.push(`unfiltered ${ops.join(' ')}`)
    for (const x of filters) checkFilter(x, problems)
  }
  return problems
}

/** Every string in the profile's rules, decoded (paths, names). */
export function profileStrings (text: string): string[] {
  const out: string[] = []
  const walk = (e: Sexpr) => {
    if (e.kind === 'list') e.items.forEach(walk)
    else if (e.kind === 'string') out.push(e.value)
  }
  readSbpl(text).forEach(walk)
  return out
}
