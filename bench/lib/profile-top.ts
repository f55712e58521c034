// The top of a V8 CPU profile (node --cpu-prof): self time per function with
// file:line, our compiled files mapped back to their .ts source, plus self
// time per file. Run: node dist/bench/lib/profile-top.js FILE.cpuprofile [--top 25]
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const maps = new Map<string, SourceMap | null>();

/** `file:line` (1-based), through the source map when the file has one. */
function where(url: string, line: number, column: number): string {
  if (!url) return '(native)';
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (!maps.has(file)) maps.set(file, existsSync(`${file}.map`) ? new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))) : null);
  const map = maps.get(file);
  const entry = map?.findEntry(line, column) as { originalSource?: string; originalLine?: number } | undefined;
  if (entry?.originalSource) return `${shorten(fileURLToPath(new URL(entry.originalSource, `file://${file}`)))}:${(entry.originalLine ?? 0) + 1}`;
  return `${shorten(file)}:${line + 1}`;
}

const shorten = (file: string) => file.replace(/^.*\/node_modules\//, '~/').replace(`${process.cwd()}/`, '');

export function profileTop(profile: Profile, top = 25): string {
  const selfMs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) selfMs.set(profile.samples[i], (selfMs.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  const total = (profile.endTime - profile.startTime) / 1000;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = selfMs.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const at = where(url, lineNumber, columnNumber);
    const name = `${functionName || '(anonymous)'}  ${at}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    const file = at.replace(/:\d+$/, '');
    byFile.set(file, (byFile.get(file) ?? 0) + ms);
  }
  // Inclusive time: each sample counts once for every distinct function on its stack.
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const label = new Map<number, string>();
  const nameOf = (id: number) => {
    let name = label.get(id);
    if (name === undefined) {
      const { functionName, url, lineNumber, columnNumber } = byId.get(id)!.callFrame;
      name = `${functionName || '(anonymous)'}  ${where(url, lineNumber, columnNumber)}`;
      label.set(id, name);
    }
    return name;
  };
  const inclusive = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) seen.add(nameOf(at));
    for (const name of seen) if (!name.startsWith('(root)')) inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
  }
  const ours = new Map([...inclusive].filter(([name]) => /  (core|connectors|sinks|bench)\//.test(name)));
  const list = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, ms]) => `${((ms / total) * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(6)} ms  ${k}`);
  return [`${total.toFixed(0)} ms profiled`, '', 'self time by function:', ...list(byFunction, top), '', 'self time by file:', ...list(byFile, Math.ceil(top / 2)), '', 'inclusive time, our functions:', ...list(ours, top)].join('\n');
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node dist/bench/lib/profile-top.js FILE.cpuprofile [--top 25]');
  const at = process.argv.indexOf('--top');
  console.log(profileTop(JSON.parse(readFileSync(file, 'utf8')) as Profile, at > 0 ? Number(process.argv[at + 1]) : 25));
}
