// The drift test (issue 9): the façade's zod schemas must say what the engine says. The
// engine's bounds are the truth (wal/src/options.rs, lsm/src/db/options.rs,
// lsm/src/table/builder.rs); the binding exposes its defaults (`__defaultDbOptions`,
// `__defaultLogOptions`) and its verdict on a set of options (`__checkDbOptions`,
// `__checkLogOptions`: null, or the error opening would give, naming the field).
//
// For every option of both schemas:
// - names: the schema's options (less `sync`, which the façade applies per write, and
//   `maxPendingBytes`, the façade's bound on what a handle holds in JavaScript besides the
//   engine's own queues) are exactly the engine's;
// - defaults: parsing `{}` gives the engine's defaults;
// - numeric bounds: at zod's min and max both accept; one past each both reject, and the
//   engine names the same field zod does; step rules (multiple of 8, power of two, 0 or at
//   least 1 MiB) are probed the same way;
// - enums: every value zod accepts the engine accepts, and a value zod rejects the binding
//   rejects too.
// A bound the engine derives from other options (the largest record from ringBytes and
// segmentBytes; the L0 triggers' order) is the engine's alone: zod accepts a superset
// there, and the engine's error names the field (asserted below).

import test from 'ava';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot } from '../helpers/uringdb.mjs';

const require = createRequire(import.meta.url);
const native = require(path.join(repoRoot, 'binding.js'));
const { DbOptionsSchema, LogOptionsSchema, nativeDbOptions, nativeLogOptions } = require(path.join(repoRoot, 'dist', 'src', 'options.js'));

const MiB = 1 << 20;
const TRIGGERS = ['l0CompactionTrigger', 'l0SlowdownTrigger', 'l0StopTrigger'];

/** The inner schema of an option (through .default() / .optional()). */
function inner(schema) {
  let s = schema;
  while (s.def?.innerType !== undefined) s = s.def.innerType;
  return s;
}

function numericOptions(schema) {
  return Object.entries(schema.shape)
    .map(([name, s]) => [name, inner(s)])
    .filter(([, s]) => s.def.type === 'number');
}

/** zod's verdict: null or the field it names. */
function zodVerdict(schema, options) {
  const r = schema.safeParse(options);
  if (r.success) return null;
  const issue = r.error.issues[0];
  return String(issue.path[0] ?? issue.keys?.[0] ?? 'options');
}

const products = [
  {
    name: 'db',
    schema: DbOptionsSchema,
    toNative: nativeDbOptions,
    defaults: () => native.__defaultDbOptions(),
    check: (o) => native.__checkDbOptions(o),
    jsOnly: ['sync', 'maxPendingBytes'],
  },
  {
    name: 'log',
    schema: LogOptionsSchema,
    toNative: nativeLogOptions,
    defaults: () => native.__defaultLogOptions(),
    check: (o) => native.__checkLogOptions(o),
    jsOnly: ['sync', 'maxPendingBytes'],
  },
];

/** A valid set of options with `name` = `value`, other options moved only where the engine
 * ties them to it (the L0 triggers' order). */
function withValue(base, name, value) {
  const o = { ...base, [name]: value };
  const i = TRIGGERS.indexOf(name);
  if (i >= 0) {
    for (const [j, t] of TRIGGERS.entries()) {
      if (j < i) o[t] = Math.min(o[t], value);
      if (j > i) o[t] = Math.max(o[t], value);
    }
  }
  return o;
}

for (const p of products) {
  test(`${p.name}: the schema names exactly the engine's options`, (t) => {
    const zodNames = Object.keys(p.schema.shape).filter((n) => !p.jsOnly.includes(n)).sort();
    // An option with no default (zod: optional) is absent from the engine's defaults too,
    // where absence means "derived" (maxRecordBytes: the largest that fits).
    const optional = zodNames.filter((n) => p.schema.shape[n].def.type === 'optional');
    const engineNames = [...Object.keys(p.defaults()), ...optional].sort();
    t.deepEqual(zodNames, engineNames);
    for (const n of optional) t.false(n in p.defaults(), `${n}: absent from the engine's defaults too`);
  });

  test(`${p.name}: the schema's defaults are the engine's`, (t) => {
    t.deepEqual(p.toNative(p.schema.parse({})), p.defaults());
  });

  test(`${p.name}: every numeric bound of the schema is the engine's`, (t) => {
    const base = p.schema.parse({});
    const numeric = numericOptions(p.schema).filter(([name]) => !p.jsOnly.includes(name));
    t.true(numeric.length >= 4, 'numeric options found');
    for (const [name, s] of numeric) {
      const min = s.minValue;
      // No stated maximum (zod's int() caps at MAX_SAFE_INTEGER): the engine derives it.
      const max = s.maxValue === Number.MAX_SAFE_INTEGER ? Infinity : s.maxValue;
      t.true(Number.isFinite(min), `${name}: zod states a minimum`);
      for (const v of [min, ...(Number.isFinite(max) ? [max] : [])]) {
        const o = withValue(base, name, v);
        t.is(zodVerdict(p.schema, o), null, `${name} = ${v}: zod accepts`);
        const e = p.check(p.toNative(o));
        t.is(e, null, `${name} = ${v}: the engine accepts (got ${e?.message})`);
      }
      const outside = [min - 1, ...(Number.isFinite(max) ? [max + 1] : [])].filter((v) => v >= -1);
      for (const v of outside) {
        const o = { ...base, [name]: v };
        t.is(zodVerdict(p.schema, o), name, `${name} = ${v}: zod rejects, naming it`);
        const e = p.check({ ...p.toNative(base), [name]: v });
        t.is(e?.field, name, `${name} = ${v}: the engine rejects, naming it (got ${e?.field ?? 'acceptance'})`);
        t.is(e?.code, 'ERR_URINGDB_INVALID_OPTION');
      }
    }
  });

  test(`${p.name}: step rules agree (segmentBytes a multiple of 8, ringBytes a power of two)`, (t) => {
    const base = p.schema.parse({});
    for (const [name, v] of [
      ['segmentBytes', 4 * MiB + 4],
      ['ringBytes', 3 * MiB],
      ['ringBytes', MiB + 1],
    ]) {
      t.is(zodVerdict(p.schema, { ...base, [name]: v }), name, `${name} = ${v}: zod rejects`);
      t.is(p.check({ ...p.toNative(base), [name]: v })?.field, name, `${name} = ${v}: the engine rejects`);
    }
  });

  test(`${p.name}: enum options accept the same values`, (t) => {
    const base = p.schema.parse({});
    for (const [name, s] of Object.entries(p.schema.shape)) {
      const e = inner(s);
      if (e.def.type !== 'enum') continue;
      for (const v of e.options) {
        t.is(p.check(p.toNative({ ...base, [name]: v })), null, `${name} = ${v}`);
      }
      t.is(zodVerdict(p.schema, { ...base, [name]: 'bogus' }), name);
      t.throws(() => p.check({ ...p.toNative(base), [name]: 'bogus' }), undefined, `${name} = 'bogus': the binding refuses it`);
    }
  });
}

test('db: compactionRateBytesPerSec is 0 (unlimited) or at least 1 MiB in both', (t) => {
  const base = DbOptionsSchema.parse({});
  for (const v of [1, MiB - 1]) {
    t.is(zodVerdict(DbOptionsSchema, { ...base, compactionRateBytesPerSec: v }), 'compactionRateBytesPerSec', `${v}: zod`);
    t.is(native.__checkDbOptions({ ...nativeDbOptions(base), compactionRateBytesPerSec: v })?.field, 'compactionRateBytesPerSec', `${v}: engine`);
  }
  for (const v of [0, MiB]) {
    t.is(zodVerdict(DbOptionsSchema, { ...base, compactionRateBytesPerSec: v }), null, `${v}: zod`);
    t.is(native.__checkDbOptions({ ...nativeDbOptions(base), compactionRateBytesPerSec: v }), null, `${v}: engine`);
  }
});

test('db: compression names one to seven levels from the same set in both', (t) => {
  const base = DbOptionsSchema.parse({});
  const seven = Array(7).fill('zstd');
  t.is(zodVerdict(DbOptionsSchema, { ...base, compression: seven }), null);
  t.is(native.__checkDbOptions(nativeDbOptions({ ...base, compression: seven })), null);
  for (const bad of [[], [...seven, 'lz4']]) {
    t.is(zodVerdict(DbOptionsSchema, { ...base, compression: bad }), 'compression', `${bad.length} levels: zod`);
    t.is(native.__checkDbOptions({ ...nativeDbOptions(base), compression: bad })?.field, 'compression', `${bad.length} levels: engine`);
  }
});

test('bounds the engine derives from other options are named by the engine', (t) => {
  // L0 triggers out of order: zod checks each alone; the engine names the later one.
  const db = DbOptionsSchema.parse({ l0CompactionTrigger: 8, l0SlowdownTrigger: 4 });
  t.is(native.__checkDbOptions(nativeDbOptions(db))?.field, 'l0SlowdownTrigger');
  // The largest record is at most a quarter of the ring.
  const log = LogOptionsSchema.parse({ ringBytes: 4 * MiB, maxRecordBytes: MiB + 1 });
  t.is(native.__checkLogOptions(nativeLogOptions(log))?.field, 'maxRecordBytes');
  t.is(native.__checkLogOptions(nativeLogOptions({ ...log, maxRecordBytes: MiB })), null);
});
