// Tiny flag parser: --name=value, --name value, and bare --flag (true).

/**
 * @param {string[]} argv
 * @param {Record<string, {type: 'boolean' | 'string' | 'number', default?: unknown}>} spec
 */
export function parseArgs(argv, spec) {
  const out = {}
  for (const [name, s] of Object.entries(spec)) out[name] = s.default
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)}`)
    let [name, value] = arg.slice(2).split(/=(.*)/s, 2)
    const s = spec[name]
    if (!s) throw new Error(`unknown flag --${name} (known: ${Object.keys(spec).map((n) => '--' + n).join(', ')})`)
    if (s.type === 'boolean') {
      out[name] = value === undefined ? true : !['0', 'false', 'no'].includes(value)
      continue
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new Error(`--${name} needs a value`)
      value = argv[++i]
    }
    if (s.type === 'number') {
      const n = Number(value)
      if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: ${JSON.stringify(value)} is not a positive number`)
      out[name] = n
    } else {
      out[name] = value
    }
  }
  return out
}
