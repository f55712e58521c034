/**
 * A column's type name from its type OID and type modifier (what a pgoutput
 * relation message and a query's field description both carry), in the short
 * forms core/log/debezium/postgres-values.ts maps to Debezium's value types.
 * Precision matters there: numeric(p,s) vs unconstrained numeric, timestamp(3)
 * (milliseconds) vs timestamp (microseconds), bit(1) (a boolean).
 * Types outside this list are named by OID (`oid:16385`): their values are
 * written as the event holds them.
 */
const NAMES: Record<number, string> = {
  16: 'bool', 17: 'bytea', 18: 'char', 19: 'name', 20: 'int8', 21: 'int2', 23: 'int4', 25: 'text', 26: 'oid',
  114: 'json', 142: 'xml', 700: 'float4', 701: 'float8', 790: 'money', 1042: 'bpchar', 1043: 'varchar',
  1082: 'date', 1083: 'time', 1114: 'timestamp', 1184: 'timestamptz', 1186: 'interval', 1266: 'timetz',
  1560: 'bit', 1562: 'varbit', 1700: 'numeric', 2950: 'uuid', 3802: 'jsonb',
};

/** Built-in array types: their element type (the column's modifier applies to the elements). */
const ARRAY_ELEMENTS: Record<number, number> = {
  1000: 16, 1001: 17, 1005: 21, 1007: 23, 1016: 20, 1021: 700, 1022: 701, 1009: 25, 1015: 1043, 1014: 1042,
  1182: 1082, 1183: 1083, 1115: 1114, 1185: 1184, 1231: 1700, 2951: 2950,
};

/** Types whose modifier is a fractional-seconds precision (-1: the default, 6). */
const TIME_PRECISION = new Set([1083, 1114, 1184, 1266]);

export function pgColumnType(typeOid: number, typeMod: number): string {
  const element = ARRAY_ELEMENTS[typeOid];
  if (element !== undefined) return `${pgColumnType(element, typeMod)}[]`;
  const name = NAMES[typeOid];
  if (!name) return `oid:${typeOid}`;
  if (typeOid === 1700 && typeMod >= 4) {
    const packed = typeMod - 4;
    return `numeric(${(packed >> 16) & 0xffff},${packed & 0xffff})`;
  }
  if (TIME_PRECISION.has(typeOid) && typeMod >= 0) return `${name}(${typeMod})`;
  if ((typeOid === 1560 || typeOid === 1562) && typeMod >= 0) return `${name}(${typeMod})`;
  return name;
}

/** Column name → type name, built once per table shape and shared by its events. */
export function pgColumnTypes(columns: ReadonlyArray<{ name: string; typeOid: number; typeMod: number }>): Readonly<Record<string, string>> {
  return Object.freeze(Object.fromEntries(columns.map((c) => [c.name, pgColumnType(c.typeOid, c.typeMod)])));
}

const typesByShape = new WeakMap<object, Readonly<Record<string, string>>>();

/** pgColumnTypes() of a relation message (or a query's field list), computed once per object. */
export function pgColumnTypesOf(shape: { columns: ReadonlyArray<{ name: string; typeOid: number; typeMod: number }> } | ReadonlyArray<{ name: string; dataTypeID: number; dataTypeModifier: number }>): Readonly<Record<string, string>> {
  let types = typesByShape.get(shape);
  if (!types) {
    const columns = Array.isArray(shape)
      ? (shape as ReadonlyArray<{ name: string; dataTypeID: number; dataTypeModifier: number }>).map((f) => ({ name: f.name, typeOid: f.dataTypeID, typeMod: f.dataTypeModifier }))
      : (shape as { columns: ReadonlyArray<{ name: string; typeOid: number; typeMod: number }> }).columns;
    types = pgColumnTypes(columns);
    typesByShape.set(shape, types);
  }
  return types;
}

/** The text of a row's json/jsonb columns as Postgres sent it (the event holds them parsed); undefined when there are none. */
export function pgJsonText(types: Readonly<Record<string, string>>, raw: Record<string, unknown> | null | undefined): Record<string, string> | undefined {
  if (!raw) return undefined;
  let out: Record<string, string> | undefined;
  for (const [name, type] of Object.entries(types)) {
    const text = raw[name];
    if ((type === 'json' || type === 'jsonb') && typeof text === 'string') (out ??= {})[name] = text;
  }
  return out;
}
