// Paths are joined the way BoxLite's Rust code joins them (PathBuf::join):
// the base is kept exactly as given and one "/" is added unless the base
// is empty or already ends with one; an absolute part replaces what came
// before. Nothing is normalized: "/h/a/../b" stays as it is and the kernel
// resolves it (after symlinks, which a lexical normalizer would get wrong).
// See docs/design.md#paths.

/** base joined with each part in turn, exactly as PathBuf::join. */
export function joinPath (base: string, ...parts: string[]): string {
  let out = base
  for (const part of parts) {
    if (part.startsWith('/')) out = part
    else out = out === '' || out.endsWith('/') ? out + part : `${out}/${part}`
  }
  return out
}

/**
 * The last component of a path and what comes before it, trailing slashes
 * ignored (Rust's file_name / parent): "/h/boxes/b1/" -> ["/h/boxes", "b1"].
 */
export function splitLast (p: string): [parent: string, name: string] {
  // The regex only when there is a trailing slash to strip: most paths have none.
  const trimmed = p.endsWith('/') ? p.replace(/(.)\/+$/, '$1') : p
  const slash = trimmed.lastIndexOf('/')
  if (slash < 0) return ['', trimmed]
  return [slash === 0 ? '/' : trimmed.slice(0, slash), trimmed.slice(slash + 1)]
}
