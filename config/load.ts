import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse, parseDocument } from 'yaml';
import { z } from 'zod';
import { CdcConfig, configSchema, knownTypes } from './schema';

/** A config problem, already worded for the operator: `<file>: <key path>: <what was expected>`. */
export class ConfigError extends Error {
  constructor(readonly file: string, readonly problems: string[]) {
    super(problems.map((p) => `${file}: ${p}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export type LoadedConfig = CdcConfig & { configFile: string };

/** Reads, expands `${VAR}` and validates a config file. Relative paths resolve against the file's folder. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`cannot read the config file: ${(error as Error).message}`]);
  }
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) {
    throw new ConfigError(file, document.errors.map((e) => `invalid YAML: ${e.message}`));
  }
  const raw = document.toJS() ?? {};
  const envProblems: string[] = [];
  const expanded = expandEnv(raw, [], env, envProblems);
  if (envProblems.length > 0) throw new ConfigError(file, envProblems);

  const parsed = configSchema.safeParse(expanded);
  if (!parsed.success) throw new ConfigError(file, parsed.error.issues.map((issue) => describeIssue(issue, expanded)));
  const config = parsed.data;
  const base = dirname(resolve(file));
  config.service.dataDir = resolve(base, config.service.dataDir);
  if (config.log.type === 'embedded' && config.log.dir) config.log.dir = resolve(base, config.log.dir);
  return { ...config, configFile: resolve(file) };
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string value. A value that is
 * one placeholder alone takes the type its text reads as in YAML, so
 * `port: ${PORT}` gives a number and `enabled: ${FLAG}` a boolean.
 */
function expandEnv(value: unknown, path: PropertyKey[], env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === 'string') {
    const expanded = value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name: string, fallback?: string) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${formatPath(path)}: environment variable ${name} is not set (export ${name}=... or write the value in the file)`);
      return '';
    });
    if (expanded !== value && /^\$\{[^}]+\}$/.test(value)) {
      const typed: unknown = parse(expanded);
      if (typeof typed === 'number' || typeof typed === 'boolean') return typed;
    }
    return expanded;
  }
  if (Array.isArray(value)) return value.map((item, i) => expandEnv(item, [...path, i], env, problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, [...path, k], env, problems)]));
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key "${key}"${allowedKeysHint(issue.path)}`).join('\n');
    case 'invalid_type': {
      const actual = valueAt(input, issue.path);
      if (actual === undefined) return `${path}: missing; expected ${issue.expected}`;
      return `${path}: expected ${issue.expected}, got ${describeValue(actual)}`;
    }
    case 'invalid_union': {
      // A `type` that no registered component has: list the ones that exist.
      const typePath = issue.path[issue.path.length - 1] === 'type' ? issue.path : [...issue.path, 'type'];
      const list = issue.path[0] === 'sources' ? knownTypes.sources : issue.path[0] === 'sinks' ? knownTypes.sinks : knownTypes.log;
      return `${formatPath(typePath)}: expected one of ${list.map((t) => `"${t}"`).join(', ')}, got ${describeValue(valueAt(input, typePath))}`;
    }
    case 'invalid_format':
      return `${path}: expected ${issue.message}, got ${describeValue(valueAt(input, issue.path))}`;
    default:
      return `${path}: ${issue.message}`;
  }
}

function allowedKeysHint(path: PropertyKey[]): string {
  if (path.length === 0) return ' (allowed: service, log, sources, sinks)';
  return '';
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let current: unknown = input;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

export function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`)).join('');
}
