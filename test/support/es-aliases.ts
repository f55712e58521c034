// Index aliases with ES's documented semantics: _aliases applies all its
// actions atomically (all or none), an alias may not share a name with an
// index, removing a missing alias is an error, writes through an alias need a
// single target index. Used by es-server.ts.
import { EsError, EsIndex } from './es-index';

type AliasAction = Record<string, { index?: string; alias?: string }>;

export class EsAliases {
  /** alias → indices */
  private aliases = new Map<string, Set<string>>();

  constructor(private readonly indices: Map<string, EsIndex>) {}

  isAlias(name: string): boolean {
    return this.aliases.has(name);
  }

  /** Concrete indices behind an index or alias name. */
  resolve(name: string, throwIfMissing = true): string[] {
    if (this.indices.has(name)) return [name];
    const targets = this.aliases.get(name);
    if (targets?.size) return [...targets];
    if (!throwIfMissing) return [];
    throw new EsError(404, 'index_not_found_exception', `no such index [${name}]`, { index: name, 'resource.id': name, 'resource.type': 'index_or_alias' });
  }

  /** Where a write to `name` goes; a name that does not exist yet is auto-created as an index. */
  writeIndex(name: string): string {
    const targets = this.aliases.get(name);
    if (!targets) return name;
    if (targets.size !== 1) {
      throw new EsError(400, 'illegal_argument_exception', `no write index is defined for alias [${name}]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index`);
    }
    return [...targets][0];
  }

  forgetIndex(index: string): void {
    for (const [alias, targets] of this.aliases) {
      targets.delete(index);
      if (targets.size === 0) this.aliases.delete(alias);
    }
  }

  /** POST /_aliases: validates every action against the state as the earlier ones leave it, then applies all or nothing. */
  update(actions: AliasAction[]): { status: number; body: unknown } {
    const next = new Map([...this.aliases].map(([alias, targets]) => [alias, new Set(targets)]));
    const removedIndices: string[] = [];
    const exists = (index: string) => this.indices.has(index) && !removedIndices.includes(index);
    for (const action of actions) {
      const [kind] = Object.keys(action);
      const { index, alias } = action[kind];
      if (!index || !exists(index)) throw new EsError(404, 'index_not_found_exception', `no such index [${index}]`, { index });
      if (kind === 'add') {
        if (!alias) throw new EsError(400, 'action_request_validation_exception', 'Validation Failed: 1: [add] requires an [alias] to be set;');
        if (this.indices.has(alias)) throw new EsError(400, 'invalid_alias_name_exception', `Invalid alias name [${alias}]: an index or data stream exists with the same name as the alias`, { index: alias });
        next.set(alias, (next.get(alias) ?? new Set()).add(index));
      } else if (kind === 'remove') {
        if (!alias || !next.get(alias)?.has(index)) throw new EsError(404, 'aliases_not_found_exception', `aliases [${alias}] missing`, { 'resource.id': alias, 'resource.type': 'aliases' });
        next.get(alias)!.delete(index);
        if (next.get(alias)!.size === 0) next.delete(alias);
      } else if (kind === 'remove_index') {
        removedIndices.push(index);
        for (const [name, targets] of next) if (targets.delete(index) && targets.size === 0) next.delete(name);
      } else {
        throw new EsError(400, 'parsing_exception', `unknown alias action [${kind}]`);
      }
    }
    this.aliases = next;
    for (const index of removedIndices) this.indices.delete(index);
    return { status: 200, body: { acknowledged: true, errors: false } };
  }

  /** GET /_alias[/<name>] or /<index>/_alias: { index: { aliases: { alias: {} } } }; `name` may hold `*` wildcards. */
  list(name?: string, index?: string): { status: number; body: unknown } {
    const pattern = name ? globToRegExp(name) : null;
    const out: Record<string, { aliases: Record<string, object> }> = {};
    const indexPattern = index?.includes('*') ? globToRegExp(index) : null;
    const indices = !index ? [...this.indices.keys()] : indexPattern ? [...this.indices.keys()].filter((i) => indexPattern.test(i)) : [index];
    if (index && !indexPattern && !this.indices.has(index)) throw new EsError(404, 'index_not_found_exception', `no such index [${index}]`, { index });
    for (const indexName of indices) {
      const aliases: Record<string, object> = {};
      for (const [alias, targets] of this.aliases) if (targets.has(indexName) && (!pattern || pattern.test(alias))) aliases[alias] = {};
      if (!pattern || Object.keys(aliases).length) out[indexName] = { aliases };
    }
    if (pattern && !name!.includes('*') && Object.keys(out).length === 0) return { status: 404, body: { error: `alias [${name}] missing`, status: 404 } };
    return { status: 200, body: out };
  }
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}
