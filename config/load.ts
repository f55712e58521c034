import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse, parseDocument } from 'yaml';
import { z } from 'zod';
import { isSecretKey, redact, redactText, rememberSecret } from './redact';
import { CdcConfig, configSchema, knownTypes } from './schema';

/** A config problem, already worded for the operator: `<file>: <key path>: <what was expected>`. */
export class ConfigError extends Error {
  constructor(readonly file: string, readonly problems: string[]) {
    super(problems.map((p) => `${file}: ${redactText(p)}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export type LoadedConfig = CdcConfig & { configFile: string };

/**
 * Reads, expands `${VAR}` and `${file:/run/secrets/NAME}` and validates a config
 * file. Relative paths (data dir, log dir, secret files) resolve against the file's folder.
 */
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
  const expanded = expandEnv(raw, [], { env, base: dirname(resolve(file)) }, envProblems);
  if (envProblems.length > 0) throw new ConfigError(file, envProblems);

  const parsed = configSchema.safeParse(expanded);
  if (!parsed.success) throw new ConfigError(file, parsed.error.issues.map((issue) => describeIssue(issue, expanded)));
  const config = parsed.data;
  const base = dirname(resolve(file));
  config.service.dataDir = resolve(base, config.service.dataDir);
  if (config.log.type === 'embedded' && config.log.dir) config.log.dir = resolve(base, config.log.dir);
  return { ...config, configFile: resolve(file) };
}

interface ExpandContext {
  env: NodeJS.ProcessEnv;
  /** The config file's folder: relative secret-file paths start here. */
  base: string;
}

/**
 * Replaces `${VAR}`, `${VAR:-default}` and `${file:PATH}` (the file's text, its
 * trailing newline trimmed: Docker and Kubernetes secrets) in every string
 * value. A value that is one placeholder alone takes the type its text reads
 * as in YAML, so `port: ${PORT}` gives a number and `enabled: ${FLAG}` a boolean.
 * Values read from secret files or under secret keys are remembered, so no
 * message shows them.
 */
function expandEnv(value: unknown, path: PropertyKey[], context: ExpandContext, problems: string[]): unknown {
  if (typeof value === 'string') {
    // One pass, so a secret's own text is never expanded again.
    const expanded = value.replace(/\$\{(?:file:([^}]+)|([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?)\}/g, (_, secretFile?: string, name?: string, fallback?: string) => {
      if (secretFile !== undefined) return readSecretFile(secretFile.trim(), path, context, problems);
      const found = context.env[name!];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${formatPath(path)}: environment variable ${name} is not set (export ${name}=... or write the value in the file)`);
      return '';
    });
    if (isSecretKey(path[path.length - 1])) rememberSecret(expanded);
    if (expanded !== value && /^\$\{[^}]+\}$/.test(value)) {
      const typed: unknown = parse(expanded);
      if (typeof typed === 'number' || typeof typed === 'boolean') return typed;
    }
    return expanded;
  }
  if (Array.isArray(value)) return value.map((item, i) => expandEnv(item, [...path, i], context, problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, [...path, k], context, problems)]));
  }
  return value;
}

function readSecretFile(name: string, path: PropertyKey[], context: ExpandContext, problems: string[]): string {
  const file = resolve(context.base, name);
  try {
    const secret = readFileSync(file, 'utf8').replace(/(\r?\n)+$/, '');
    rememberSecret(secret);
    return secret;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    problems.push(`${formatPath(path)}: cannot read secret file ${file} (${why}): create it, mount the secret there, or write the value in the file`);
    return '';
  }
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key "${key}"${allowedKeysHint(issue.path)}`).join('\n');
    case 'invalid_type': {
      const actual = valueAt(input, issue.path);
      if (actual === undefined) return `${path}: missing; expected ${issue.expected}`;
      return `${path}: expected ${issue.expected}, got ${describeValue(actual, issue.path)}`;
    }
    case 'invalid_union': {
      // A `type` that no registered component has: list the ones that exist.
      const typePath = issue.path[issue.path.length - 1] === 'type' ? issue.path : [...issue.path, 'type'];
      const list = issue.path[0] === 'sources' ? knownTypes.sources : issue.path[0] === 'sinks' ? knownTypes.sinks : knownTypes.log;
      return `${formatPath(typePath)}: expected one of ${list.map((t) => `"${t}"`).join(', ')}, got ${describeValue(valueAt(input, typePath), typePath)}`;
    }
    case 'invalid_format':
      return `${path}: expected ${issue.message}, got ${describeValue(valueAt(input, issue.path), issue.path)}`;
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

/** The value as an error message shows it: never a secret (redact.ts). */
function describeValue(value: unknown, path: PropertyKey[]): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (isSecretKey(path[path.length - 1])) return `a ${typeof value} (hidden: it is a secret)`;
  if (typeof value === 'string') return `the string ${JSON.stringify(redact(value))}`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

export function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`)).join('');
}
