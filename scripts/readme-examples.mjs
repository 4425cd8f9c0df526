// Turns the ```ts blocks of a README into one TypeScript module, so that tsc can prove the
// examples match the package's types (used by scripts/pack-check.sh on the packed README).
//
//   node scripts/readme-examples.mjs README.md out.mts
//
// Import lines are hoisted to the top and merged per module; every block then runs in its own
// `{ ... }` scope. Names that the examples use without defining them (a directory, an open
// log, a record) are declared once in a prelude.
import { readFileSync, writeFileSync } from 'node:fs'

const [readmePath, outPath] = process.argv.slice(2)
if (!readmePath || !outPath) {
  console.error('usage: node scripts/readme-examples.mjs README.md out.mts')
  process.exit(2)
}

const blocks = [...readFileSync(readmePath, 'utf8').matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1])
if (blocks.length === 0) {
  console.error(`${readmePath} has no \`\`\`ts blocks`)
  process.exit(1)
}

/** module specifier -> { default?: string, named: Set<string> } */
const imports = new Map()
const bodies = []
for (const block of blocks) {
  const body = []
  for (const line of block.split('\n')) {
    const m = /^import\s+(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s*'([^']+)'\s*;?\s*$/.exec(line)
    if (!m) {
      body.push(line)
      continue
    }
    const [, def, named, from] = m
    const entry = imports.get(from) ?? { default: undefined, named: new Set() }
    if (def) entry.default = def
    for (const name of (named ?? '').split(',').map((s) => s.trim()).filter(Boolean)) entry.named.add(name)
    imports.set(from, entry)
  }
  bodies.push(body.join('\n'))
}

const importLines = [...imports].map(([from, { default: def, named }]) => {
  const parts = []
  if (def) parts.push(def)
  if (named.size > 0) parts.push(`{ ${[...named].join(', ')} }`)
  return `import ${parts.join(', ')} from '${from}'`
})
const uringdb = imports.get('uringdb')
if (!uringdb?.named.has('openLog')) importLines.push(`import { openLog } from 'uringdb'`)

const out = [
  ...importLines,
  '',
  '// Names the examples use without defining them.',
  'declare const dir: string',
  'declare const log: Awaited<ReturnType<typeof openLog>>',
  'declare const record: string',
  '',
  ...bodies.map((body, i) => `// README example ${i + 1}\n{\n${body}}\n`),
  'export {}',
].join('\n')
writeFileSync(outPath, out)
console.log(`readme-examples: ${blocks.length} examples -> ${outPath}`)
