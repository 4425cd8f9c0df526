#!/usr/bin/env node
// Finds import cycles between source files and fails with each cycle printed (issue 9: "the
// import graph between files has no cycles, checked in CI by a small script over the
// use/import lines"). Run by scripts/lint.sh; `node scripts/check-cycles.mjs` on its own.
//
// Rust, per crate (crates/*/src): the module tree comes from `mod` lines (with `#[path]` and
// inline `mod name { ... }` blocks, test modules included), and an edge A -> B is a `use` line
// in file A whose path (`crate::`, `super::`, `self::`, or a child module of the current one)
// names an item defined in file B. A re-export (`pub use x::Item` in a mod.rs or lib.rs) is
// followed to the file that defines the item, so importing through a re-export is not an edge
// to the re-exporting file. `mod` lines are the tree, not edges: a parent declaring a child is
// not a dependency on the child's items.
//
// TypeScript: hand-written files at the root and under src/ (binding.d.ts is generated and is
// left out); an edge is a relative `import`/`export ... from`/`import()` specifier.
//
// This is a line-level reading, not a compiler: it skips string literals and comments
// roughly, and an item it cannot place is charged to the module the path stops at.

import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { join, dirname, relative, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** @type {Map<string, Map<string, string>>} file -> (target file -> evidence line) */
const graph = new Map();
function addEdge(from, to, why) {
  if (from === to) return;
  if (!graph.has(from)) graph.set(from, new Map());
  const edges = graph.get(from);
  if (!edges.has(to)) edges.set(to, why);
}

// ---------- Rust ----------

/** Removes comments and string/char literal contents, keeping line structure. */
function stripRust(text) {
  let out = '';
  let i = 0;
  let blockDepth = 0;
  while (i < text.length) {
    const c = text[i];
    const n = text[i + 1];
    if (blockDepth > 0) {
      if (c === '*' && n === '/') { blockDepth--; i += 2; continue; }
      if (c === '/' && n === '*') { blockDepth++; i += 2; continue; }
      out += c === '\n' ? '\n' : ' ';
      i++;
      continue;
    }
    if (c === '/' && n === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && n === '*') { blockDepth++; i += 2; continue; }
    // raw strings r"..." / r#"..."#
    const raw = /^b?r(#*)"/.exec(text.slice(i, i + 12));
    if (raw && !/[A-Za-z0-9_]/.test(text[i - 1] ?? '')) {
      const close = '"' + raw[1];
      const end = text.indexOf(close, i + raw[0].length);
      const stop = end < 0 ? text.length : end + close.length;
      out += '""' + text.slice(i, stop).replace(/[^\n]/g, '').slice(0);
      i = stop;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let nl = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\') j++;
        else if (text[j] === '\n') nl += '\n';
        j++;
      }
      out += '""' + nl;
      i = j + 1;
      continue;
    }
    if (c === "'") {
      // char literal ('a', '\n', '\u{..}') vs lifetime ('a)
      const m = /^'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'/.exec(text.slice(i, i + 12));
      if (m) { out += "' '"; i += m[0].length; continue; }
    }
    out += c;
    i++;
  }
  return out;
}

/** Expands a use tree (`a::{b, c::{d as e, self}}`) into paths (arrays of segments). */
function expandUse(tree) {
  tree = tree.replace(/\s+as\s+/g, '@').replace(/\s+/g, '');
  const results = [];
  function walk(prefix, s) {
    // split top-level by commas
    const parts = [];
    let depth = 0;
    let cur = '';
    for (const ch of s) {
      if (ch === '{') depth++;
      if (ch === '}') depth--;
      if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
    }
    if (cur) parts.push(cur);
    for (const part of parts) {
      const brace = part.indexOf('{');
      if (brace >= 0) {
        const head = part.slice(0, brace).replace(/::$/, '');
        const inner = part.slice(brace + 1, part.lastIndexOf('}'));
        walk(head ? [...prefix, ...head.split('::')] : prefix, inner);
      } else {
        const [path, alias] = part.includes('@') ? part.split('@') : [part, null];
        let segs = path.split('::').filter(Boolean);
        if (segs.length && segs[segs.length - 1] === 'self') segs = segs.slice(0, -1);
        if (segs.length || prefix.length) {
          const full = [...prefix, ...segs];
          results.push({ path: full, alias: alias ?? full[full.length - 1] });
        }
      }
    }
  }
  walk([], tree);
  return results;
}

function rustCrate(srcDir) {
  const crateName = relative(root, dirname(srcDir));
  /** module key ('' for root, 'a::b') -> { file, defined:Set, uses:[], children:Set } */
  const modules = new Map();
  const fileUses = []; // { file, module, path:[...], line }

  function loadFile(file, modPath, isModRs, skip = false) {
    const text = stripRust(readFileSync(file, 'utf8'));
    const lines = text.split('\n');
    const dir = isModRs ? dirname(file) : join(dirname(file), basename(file, '.rs'));
    // stack of inline modules: { path, depth }
    const stack = [{ path: modPath, depth: 0, skip }];
    const ensure = (p) => {
      const key = p.join('::');
      if (!modules.has(key)) modules.set(key, { file, defined: new Set(), reexports: new Map(), globs: [], children: new Set() });
      return modules.get(key);
    };
    ensure(modPath);
    let depth = 0;
    let pendingPath = null;
    let pendingTest = false;
    let useBuf = null;
    for (let ln = 0; ln < lines.length; ln++) {
      const line = lines[ln];
      const current = stack[stack.length - 1].path;
      const skipping = stack[stack.length - 1].skip;
      if (/#\[cfg\((all\()?test\b/.test(line)) pendingTest = true;
      const mod = ensure(current);
      const pathAttr = /#\[path\s*=\s*""\]/.test(line) ? readPathAttr(file, ln) : null;
      if (pathAttr) pendingPath = pathAttr;
      if (useBuf !== null) {
        useBuf.text += ' ' + line;
        if (line.includes(';')) { finishUse(useBuf); useBuf = null; }
      } else {
        const u = /^\s*(pub(\([^)]*\))?\s+)?use\s+(.*)$/.exec(line);
        if (u) {
          useBuf = { text: u[3], module: current, pub: !!u[1], line: ln + 1, file, skip: skipping };
          if (line.includes(';')) { finishUse(useBuf); useBuf = null; }
        }
      }
      const m = /^\s*(pub(\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*(;|\{)/.exec(line);
      if (m) {
        const name = m[3];
        mod.children.add(name);
        mod.defined.add(name);
        if (m[4] === ';') {
          const child = [...current, name];
          let childFile;
          let childIsModRs;
          if (pendingPath) {
            childFile = join(dirname(file), pendingPath);
            childIsModRs = basename(childFile) === 'mod.rs';
          } else {
            const inlineDir = join(dir, ...current.slice(modPath.length));
            if (existsSync(join(inlineDir, name + '.rs'))) {
              childFile = join(inlineDir, name + '.rs');
              childIsModRs = false;
            } else {
              childFile = join(inlineDir, name, 'mod.rs');
              childIsModRs = true;
            }
          }
          if (existsSync(childFile)) loadFile(childFile, child, childIsModRs, skipping || pendingTest);
        } else {
          // inline module: opens at this line's brace
          stack.push({ path: [...current, name], depth: depth + 1, skip: skipping || pendingTest });
        }
        pendingPath = null;
        pendingTest = false;
      } else if (!pathAttr && /\S/.test(line) && !/^\s*#/.test(line)) {
        pendingPath = null;
        pendingTest = false;
        // a path written in code (`crate::db::failpoint(..)`) is a dependency as much as a use line
        if (!skipping && !/^\s*(pub(\([^)]*\))?\s+)?use\s/.test(line) && useBuf === null) {
          for (const pm of line.matchAll(/(?<![A-Za-z0-9_:])([a-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
            fileUses.push({ file, module: current, path: pm[1].split('::'), line: ln + 1, text: pm[1], inline: true });
          }
        }
      }
      const def = /^\s*(pub(\([^)]*\))?\s+)?(unsafe\s+|const\s+|async\s+|extern\s+""\s+)*(fn|struct|enum|trait|type|const|static|union)\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(line);
      if (def) mod.defined.add(def[5]);
      const mac = /macro_rules!\s*([A-Za-z_][A-Za-z0-9_]*)/.exec(line);
      if (mac) mod.defined.add(mac[1]);
      for (const ch of line) {
        if (ch === '{') depth++;
        if (ch === '}') {
          depth--;
          if (stack.length > 1 && depth < stack[stack.length - 1].depth) stack.pop();
        }
      }
    }
    function finishUse(u) {
      const tree = u.text.slice(0, u.text.indexOf(';'));
      const m = ensure(u.module);
      for (const { path, alias } of expandUse(tree)) {
        if (!u.skip) fileUses.push({ file: u.file, module: u.module, path, line: u.line, text: tree.trim(), pub: u.pub });
        if (alias === '*') m.globs.push({ module: u.module, path: path.slice(0, -1) });
        else m.reexports.set(alias, { module: u.module, path });
      }
    }
  }

  function readPathAttr(file, ln) {
    const raw = readFileSync(file, 'utf8').split('\n')[ln];
    const m = /#\[path\s*=\s*"([^"]+)"\]/.exec(raw);
    return m ? m[1] : null;
  }

  const libRs = join(srcDir, 'lib.rs');
  if (existsSync(libRs)) loadFile(libRs, [], true);
  // main.rs is its own crate root that reaches the library by name; its `mod`s are its own.
  const mainRs = join(srcDir, 'main.rs');
  if (existsSync(mainRs) && !existsSync(libRs)) loadFile(mainRs, [], true);

  /** Makes a use path absolute from the crate root, or null when it is external. */
  function absolute(module, path) {
    const out = [...module];
    let i = 0;
    if (path[0] === 'crate') { out.length = 0; i = 1; }
    else if (path[0] === 'self') { i = 1; }
    else if (path[0] === 'super') {
      while (path[i] === 'super') { out.pop(); i++; }
    } else {
      const m = modules.get(module.join('::'));
      if (!m) return null;
      const re = m.reexports.get(path[0]);
      if (re && !m.children.has(path[0]) && !m.defined.has(path[0]) && re.path.join('::') !== path.join('::')) {
        const base = absolute(re.module, re.path);
        return base ? [...base, ...path.slice(1)] : null;
      }
      if (!(m.children.has(path[0]) || m.defined.has(path[0]))) return null;
    }
    return [...out, ...path.slice(i)];
  }

  /** The file defining the item at an absolute path. */
  function resolveItem(abs, hops = 0) {
    let q = abs.length;
    while (q > 0 && !modules.has(abs.slice(0, q).join('::'))) q--;
    const mod = modules.get(abs.slice(0, q).join('::'));
    const rest = abs.slice(q);
    if (!rest.length || hops > 16) return mod.file;
    const name = rest[0];
    if (mod.defined.has(name)) return mod.file;
    const re = mod.reexports.get(name);
    if (re) {
      const target = absolute(re.module, re.path);
      if (target && target.join('::') !== abs.join('::')) return resolveItem([...target, ...rest.slice(1)], hops + 1);
      return mod.file;
    }
    for (const g of mod.globs) {
      const target = absolute(g.module, g.path);
      if (!target) continue;
      const file = resolveItem([...target, ...rest], hops + 1);
      const tmod = [...modules.values()].find((m) => m.file === file);
      if (tmod && (tmod.defined.has(name) || tmod.reexports.has(name))) return file;
    }
    return mod.file;
  }

  for (const u of fileUses) {
    const abs = absolute(u.module, u.path);
    if (!abs) continue;
    // `pub use child::Item` in a parent is its façade, part of the module tree like `mod`
    if (u.pub && abs.length > u.module.length + 1 && u.module.every((s, i) => abs[i] === s)) continue;
    const to = resolveItem(abs);
    addEdge(relative(root, u.file), relative(root, to), `${relative(root, u.file)}:${u.line}: ${u.inline ? '' : 'use '}${u.text}`);
  }
  return crateName;
}

// ---------- TypeScript ----------

function tsFiles() {
  const out = [];
  const skip = new Set(['binding.d.ts']);
  for (const name of readdirSync(root)) {
    if (/\.(ts|mts|mjs)$/.test(name) && !skip.has(name) && !name.endsWith('.d.ts')) out.push(join(root, name));
  }
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(join(root, 'src'));
  return out;
}

function tsTarget(from, spec) {
  const base = resolve(dirname(from), spec);
  const candidates = [base, base.replace(/\.(m?js)$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base + '.ts', join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? null;
}

for (const file of tsFiles()) {
  const text = readFileSync(file, 'utf8');
  const re = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?(?:from\s*)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;
  let m;
  while ((m = re.exec(text))) {
    const spec = m[1] ?? m[2];
    const to = tsTarget(file, spec);
    if (to && !to.endsWith('.d.ts')) {
      const line = text.slice(0, m.index + 1).split('\n').length;
      addEdge(relative(root, file), relative(root, to), `${relative(root, file)}:${line}: import '${spec}'`);
    }
  }
}

// ---------- cycles ----------

const crates = readdirSync(join(root, 'crates')).filter((c) => existsSync(join(root, 'crates', c, 'src')));
for (const c of crates) rustCrate(join(root, 'crates', c, 'src'));

// Tarjan's strongly connected components; each component of two or more files holds a cycle.
const index = new Map();
const low = new Map();
const onStack = new Set();
const stack = [];
const sccs = [];
let counter = 0;
function strong(v) {
  index.set(v, counter);
  low.set(v, counter);
  counter++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v)?.keys() ?? []) {
    if (!index.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))); }
    else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
  }
  if (low.get(v) === index.get(v)) {
    const comp = [];
    let w;
    do { w = stack.pop(); onStack.delete(w); comp.push(w); } while (w !== v);
    if (comp.length > 1) sccs.push(comp.sort());
  }
}
const nodes = new Set([...graph.keys(), ...[...graph.values()].flatMap((e) => [...e.keys()])]);
for (const v of [...nodes].sort()) if (!index.has(v)) strong(v);

/** One shortest cycle through `start` inside a component, as a list of files. */
function cycleThrough(start, comp) {
  const inComp = new Set(comp);
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!inComp.has(w)) continue;
      if (w === start) {
        const path = [v];
        let p = prev.get(v);
        while (p !== null && p !== undefined) { path.push(p); p = prev.get(p); }
        return path.reverse();
      }
      if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
    }
  }
  return [start];
}

const edgeCount = [...graph.values()].reduce((n, e) => n + e.size, 0);
if (!sccs.length) {
  console.log(`check-cycles: ok (${nodes.size} files, ${edgeCount} import edges, no cycles)`);
  process.exit(0);
}
console.error(`check-cycles: ${sccs.length} import cycle(s) between files:`);
for (const comp of sccs) {
  console.error(`\n  files tied together: ${comp.join(', ')}`);
  // The shortest cycle through each file of the component, each printed once.
  const seen = new Set();
  for (const start of comp) {
    const cycle = cycleThrough(start, comp);
    const from = cycle.indexOf([...cycle].sort()[0]);
    const key = [...cycle.slice(from), ...cycle.slice(0, from)].join(' ');
    if (seen.has(key)) continue;
    seen.add(key);
    console.error(`\n  ${[...cycle, cycle[0]].join(' -> ')}`);
    for (let i = 0; i < cycle.length; i++) {
      console.error(`    ${graph.get(cycle[i]).get(cycle[(i + 1) % cycle.length])}`);
    }
  }
}
process.exit(1);
