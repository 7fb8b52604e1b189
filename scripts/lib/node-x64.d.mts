// Types for what the bench imports from node-x64.mjs.
export const NODE_X64: Record<'22' | '24', { spec: string, integrity: string, dir: string }>
export function nodeX64Bin (major: string | number, log?: (line: string) => void): string
