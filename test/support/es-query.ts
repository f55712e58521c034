// The query subset the ES semantics server evaluates (search, count,
// delete-by-query) over a document's indexed fields.
import { EsError, Json, Source } from './es-index';

export type Query = Record<string, Json>;

/** match_all, ids, term, terms, range and bool (must/filter/must_not) over indexed fields. */
export function matches(query: Query | undefined, id: string, fields: Source): boolean {
  if (!query || 'match_all' in query) return true;
  const [kind] = Object.keys(query);
  const spec = query[kind] as Record<string, Json>;
  const valueAt = (field: string) => field.split('.').reduce<Json | undefined>((v, k) => (v && typeof v === 'object' && !Array.isArray(v) ? v[k] : undefined), fields);
  switch (kind) {
    case 'ids': return (spec.values as string[]).includes(id);
    case 'term': {
      const [field] = Object.keys(spec);
      const wanted = typeof spec[field] === 'object' && spec[field] !== null ? (spec[field] as { value: Json }).value : spec[field];
      return String(valueAt(field)) === String(wanted);
    }
    case 'terms': {
      const [field] = Object.keys(spec);
      return (spec[field] as Json[]).map(String).includes(String(valueAt(field)));
    }
    case 'range': {
      const [field] = Object.keys(spec);
      const value = valueAt(field);
      if (value === undefined || value === null) return false;
      const bounds = spec[field] as Record<string, Json>;
      const cmp = (bound: Json) => compareValues(value, bound);
      return (bounds.lt === undefined || cmp(bounds.lt) < 0) && (bounds.lte === undefined || cmp(bounds.lte) <= 0)
        && (bounds.gt === undefined || cmp(bounds.gt) > 0) && (bounds.gte === undefined || cmp(bounds.gte) >= 0);
    }
    case 'bool': {
      const list = (key: string) => ([] as Query[]).concat((spec[key] as Query[] | Query | undefined) ?? []);
      return [...list('must'), ...list('filter')].every((q) => matches(q, id, fields)) && !list('must_not').some((q) => matches(q, id, fields));
    }
  }
  throw new EsError(400, 'parsing_exception', `unknown query [${kind}] (the test server implements match_all, ids, term, terms, range, bool)`);
}

/** Integers compare exactly (longs reach 2^63), other values as numbers or strings. */
function compareValues(a: Json, b: Json): number {
  const integer = /^-?\d+$/;
  if (integer.test(String(a)) && integer.test(String(b))) {
    const [x, y] = [BigInt(String(a)), BigInt(String(b))];
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const decimal = /^-?\d+(\.\d+)?$/; // not Number(): "1e5" is a keyword, not a number, to a keyword field
  if (decimal.test(String(a)) && decimal.test(String(b))) return Number(a) - Number(b);
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}
