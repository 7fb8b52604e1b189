// Types for what the tests import from prebuild-all.mjs.
export interface NpmTool { spec: string, integrity: string, dir: string, bin: string }
export const TOOLS: { zig: NpmTool }
export function ensureNpmPackage (tool: NpmTool, log?: (line: string) => void): string
export function cacheDir (): string
export const root: string
