import type { Parser } from 'node-sql-parser';

/**
 * `cdc resync --where`: parsed, checked and rendered by us, never pasted.
 *
 * The condition is parsed with node-sql-parser for the source's dialect and
 * accepted only when it is a boolean expression over the table's own columns
 * and literals: comparisons, IN (a list of literals), BETWEEN, IS [NOT] NULL,
 * LIKE, AND/OR/NOT and parentheses. Anything else (subqueries, function calls,
 * casts, arithmetic, variables, UNION, comments, semicolons) is refused with
 * an error naming the offending part. The SQL that reaches the database is
 * rendered from the parse tree: identifiers quoted by us, strings as bind
 * parameters, numbers, booleans and NULL as checked literals.
 */

export type WhereDialect = 'postgresql' | 'mariadb';

export class WhereFilterError extends Error {
  constructor(readonly where: string, why: string) {
    super(`--where ${JSON.stringify(where)} is refused: ${why}. Allowed: comparisons of the table's columns and literals, IN (literal, ...), BETWEEN, IS [NOT] NULL, LIKE, AND, OR, NOT, parentheses`);
    this.name = 'WhereFilterError';
  }
}

export interface WhereTarget {
  dialect: WhereDialect;
  /** `schema.table`, for messages and for qualified column names. */
  table: string;
  /** The table's column names, as the database spells them. */
  columns: string[];
}

export interface RenderedWhere {
  /** Our own SQL for the condition, parenthesized; strings are placeholders. */
  sql: string;
  /** Values for the placeholders, in order. */
  params: string[];
}

/** Builds a placeholder for the n-th parameter of the condition (0-based): Postgres `$k`, MySQL `?`. */
export type Placeholder = (index: number) => string;

type Node = Record<string, any>; // node-sql-parser's AST is loosely typed

const COMPARISONS = new Set(['=', '!=', '<>', '<', '<=', '>', '>=']);
const LIKES: Record<WhereDialect, Set<string>> = {
  postgresql: new Set(['LIKE', 'NOT LIKE', 'ILIKE', 'NOT ILIKE']),
  mariadb: new Set(['LIKE', 'NOT LIKE']),
};
const NUMBER = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;
// Loaded at the first --where: the parser's grammars cost ~7 MB that a service without resync filters never needs.
let parser: Parser | undefined;

/** Checks `where` against the table; throws WhereFilterError naming what is not allowed. Returns the rendered SQL. */
export function compileWhere(where: string, target: WhereTarget, placeholder: Placeholder): RenderedWhere {
  const tree = parseWhere(where, target.dialect);
  const params: string[] = [];
  const renderer = new Renderer(where, target, (value) => placeholder(params.push(value) - 1));
  return { sql: renderer.condition(tree), params };
}

/** Only checks (for a request, before it is queued). */
export function checkWhere(where: string, target: WhereTarget): void {
  compileWhere(where, target, () => '?');
}

function parseWhere(where: string, dialect: WhereDialect): Node {
  if (where.trim() === '') throw new WhereFilterError(where, 'it is empty');
  scanLexically(where, dialect);
  const prefix = 'SELECT * FROM t WHERE ';
  if (!parser) {
    const sqlParser = require('node-sql-parser') as typeof import('node-sql-parser');
    parser = new sqlParser.Parser();
  }
  let parsed: Node | Node[];
  try {
    parsed = parser.astify(prefix + where, { database: dialect }) as Node | Node[];
  } catch (error) {
    const offset = (error as { location?: { start?: { offset?: number } } }).location?.start?.offset;
    const at = offset === undefined ? '' : offset - prefix.length >= where.length ? ' at its end' : ` at ${JSON.stringify(where.slice(Math.max(0, offset - prefix.length)).slice(0, 60))}`;
    throw new WhereFilterError(where, `it is not one SQL condition${at}`);
  }
  if (Array.isArray(parsed) && parsed.length !== 1) throw new WhereFilterError(where, 'it holds more than one statement');
  const ast: Node = Array.isArray(parsed) ? parsed[0] : parsed;
  // Everything but the WHERE must be exactly what `SELECT * FROM t WHERE 1 = 1` gives: no ORDER BY, LIMIT, UNION, FOR UPDATE...
  const { where: tree, ...rest } = ast;
  const { where: _baseWhere, ...base } = parser!.astify(`${prefix}1 = 1`, { database: dialect }) as Node;
  if (JSON.stringify(rest) !== JSON.stringify(base)) {
    const extra = Object.keys(rest).find((key) => JSON.stringify(rest[key]) !== JSON.stringify(base[key]));
    throw new WhereFilterError(where, `it goes beyond a condition (${describeClause(extra)})`);
  }
  if (!tree) throw new WhereFilterError(where, 'it is not a condition');
  return tree;
}

function describeClause(key: string | undefined): string {
  const names: Record<string, string> = { _next: 'UNION', set_op: 'UNION', union: 'UNION', orderby: 'ORDER BY', limit: 'LIMIT', groupby: 'GROUP BY', having: 'HAVING', locking_read: 'FOR UPDATE', window: 'WINDOW', into: 'INTO' };
  return key ? `${names[key] ?? key} is not allowed` : 'unknown clause';
}

/** Comments, semicolons and set operators, looked for outside quoted strings and identifiers. */
function scanLexically(where: string, dialect: WhereDialect): void {
  const quotes = dialect === 'mariadb' ? `'"\`` : `'"`;
  let words = '';
  for (let i = 0; i < where.length; i++) {
    const c = where[i];
    if (quotes.includes(c)) {
      const end = closingQuote(where, i, c, dialect === 'mariadb' && c !== '`');
      if (end < 0) throw new WhereFilterError(where, `the quote at ${JSON.stringify(where.slice(i, i + 30))} is never closed`);
      words += ' ';
      i = end;
      continue;
    }
    const two = where.slice(i, i + 2);
    if (two === '--' || two === '/*' || (c === '#' && dialect === 'mariadb')) {
      throw new WhereFilterError(where, `comments are not allowed (${JSON.stringify(where.slice(i, i + 30))})`);
    }
    if (c === ';') throw new WhereFilterError(where, `a semicolon is not allowed (${JSON.stringify(where.slice(i, i + 30))})`);
    words += c;
  }
  const keyword = /\b(UNION|INTERSECT|EXCEPT|SELECT|INTO)\b/i.exec(words);
  if (keyword) {
    const what = keyword[1].toUpperCase() === 'SELECT' ? 'a subquery (SELECT)' : keyword[1].toUpperCase();
    throw new WhereFilterError(where, `${what} is not allowed (${JSON.stringify(words.slice(keyword.index, keyword.index + 40).trim())})`);
  }
}

/** Index of the quote closing the one at `start` (doubled quotes, and backslash escapes on MySQL strings). */
function closingQuote(text: string, start: number, quote: string, backslash: boolean): number {
  for (let i = start + 1; i < text.length; i++) {
    if (backslash && text[i] === '\\') {
      i++;
      continue;
    }
    if (text[i] === quote) {
      if (text[i + 1] === quote) {
        i++;
        continue;
      }
      return i;
    }
  }
  return -1;
}

class Renderer {
  private readonly columns: Map<string, string>;
  private readonly tableName: string;

  constructor(private readonly where: string, private readonly target: WhereTarget, private readonly param: (value: string) => string) {
    // MySQL column names compare case-insensitively; Postgres folds unquoted names to lower case.
    this.columns = new Map(target.columns.map((c) => [target.dialect === 'mariadb' ? c.toLowerCase() : c, c]));
    this.tableName = target.table.slice(target.table.indexOf('.') + 1);
  }

  private refuse(why: string): never {
    throw new WhereFilterError(this.where, why);
  }

  /** A boolean expression. */
  condition(node: Node): string {
    if (node.type === 'binary_expr') {
      const op = String(node.operator).toUpperCase();
      if (op === 'AND' || op === 'OR') return `(${this.condition(node.left)} ${op} ${this.condition(node.right)})`;
      if (COMPARISONS.has(op)) return `(${this.operand(node.left)} ${op} ${this.operand(node.right)})`;
      if (LIKES[this.target.dialect].has(op)) return `(${this.operand(node.left)} ${op} ${this.literal(node.right, 'a LIKE pattern')})`;
      if (op === 'IN' || op === 'NOT IN') {
        const items = node.right?.type === 'expr_list' ? (node.right.value as Node[]) : this.refuse(`${op} needs a list of literals`);
        if (items.length === 0) this.refuse(`${op} () needs at least one value`);
        return `(${this.operand(node.left)} ${op} (${items.map((item) => this.literal(item, `a value of ${op} (...)`)).join(', ')}))`;
      }
      if (op === 'BETWEEN' || op === 'NOT BETWEEN') {
        const bounds = node.right?.type === 'expr_list' ? (node.right.value as Node[]) : [];
        if (bounds.length !== 2) this.refuse(`${op} needs two bounds`);
        return `(${this.operand(node.left)} ${op} ${this.operand(bounds[0])} AND ${this.operand(bounds[1])})`;
      }
      if (op === 'IS' || op === 'IS NOT') {
        const right = node.right?.type === 'null' ? 'NULL' : node.right?.type === 'bool' ? (node.right.value ? 'TRUE' : 'FALSE') : this.refuse(`${op} must be followed by NULL, TRUE or FALSE`);
        return `(${this.operand(node.left)} ${op} ${right})`;
      }
      return this.refuse(`the operator ${op} is not allowed`);
    }
    if (node.type === 'function' && functionName(node).toUpperCase() === 'NOT' && node.args?.value?.length === 1) {
      return `(NOT ${this.condition(node.args.value[0])})`;
    }
    if (node.type === 'unary_expr' && String(node.operator).toUpperCase() === 'NOT') return `(NOT ${this.condition(node.expr)})`;
    if (node.type === 'bool') return node.value ? 'TRUE' : 'FALSE';
    if (node.type === 'column_ref') return this.column(node); // a boolean column
    return this.refuse(this.describe(node));
  }

  /** One side of a comparison: a column of the table or a literal. */
  private operand(node: Node): string {
    if (node?.type === 'column_ref') return this.column(node);
    return this.literal(node, 'an operand');
  }

  private literal(node: Node, what: string): string {
    switch (node?.type) {
      case 'number':
      case 'bigint': {
        const text = String(node.value);
        if (!NUMBER.test(text)) this.refuse(`the number ${text} is not a plain number`);
        return text;
      }
      case 'single_quote_string':
        return this.param(this.unquote(String(node.value)));
      case 'double_quote_string':
        if (this.target.dialect === 'mariadb') return this.param(this.unquote(String(node.value)));
        break;
      case 'var': // a Postgres dollar-quoted string, $$...$$: no escapes at all
        if (this.target.dialect === 'postgresql' && node.prefix === '$$' && node.suffix === '$$') return this.param(String(node.name));
        break;
      case 'bool':
        return node.value ? 'TRUE' : 'FALSE';
      case 'null':
        return 'NULL';
      case 'unary_expr':
        if (node.operator === '-' && (node.expr?.type === 'number' || node.expr?.type === 'bigint')) return `-${this.literal(node.expr, what)}`;
        break;
    }
    return this.refuse(`${what} must be a literal${what === 'an operand' ? ' or a column' : ''}, not ${this.describe(node)}`);
  }

  /** The string's value: '' is one quote; on MySQL backslash escapes count too (as the server reads them). */
  private unquote(raw: string): string {
    if (this.target.dialect === 'postgresql') return raw.replace(/''/g, "'");
    const escapes: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a' };
    return raw.replace(/''/g, "'").replace(/""/g, '"').replace(/\\(.)/gs, (_, c: string) => (c === '%' || c === '_' ? `\\${c}` : (escapes[c] ?? c)));
  }

  private column(node: Node): string {
    const raw = typeof node.column === 'string' ? { value: node.column, quoted: true } : { value: String(node.column?.expr?.value ?? ''), quoted: node.column?.expr?.type !== 'default' };
    if (raw.value === '*' || raw.value === '') this.refuse('* is not a column');
    if (node.table !== null && node.table !== undefined) {
      const qualifier = String(node.table);
      const same = this.target.dialect === 'mariadb' ? qualifier.toLowerCase() === this.tableName.toLowerCase() : qualifier === this.tableName || qualifier.toLowerCase() === this.tableName;
      if (!same) this.refuse(`${qualifier}.${raw.value} is not a column of ${this.target.table}`);
    }
    const lookup = this.target.dialect === 'mariadb' ? raw.value.toLowerCase() : raw.quoted ? raw.value : raw.value.toLowerCase();
    const name = this.columns.get(lookup);
    if (!name) {
      const list = this.target.columns.slice(0, 20).join(', ') + (this.target.columns.length > 20 ? ', ...' : '');
      return this.refuse(`${raw.value} is not a column of ${this.target.table} (its columns: ${list})`);
    }
    return this.target.dialect === 'mariadb' ? '`' + name.replace(/`/g, '``') + '`' : '"' + name.replace(/"/g, '""') + '"';
  }

  private describe(node: Node): string {
    if (!node || typeof node !== 'object') return 'an unknown part';
    if (node.ast || node.type === 'select') return 'a subquery';
    switch (node.type) {
      case 'function':
        return `the function call ${functionName(node)}(...)`;
      case 'aggr_func':
        return `the aggregate ${String(node.name)}(...)`;
      case 'cast':
        return `a cast (${node.symbol === '::' ? '::' : 'CAST'}${node.target?.[0]?.dataType ? ' ' + String(node.target[0].dataType) : ''}): write the literal alone, the column's type applies`;
      case 'var':
        return `the variable ${String(node.prefix ?? '')}${String(node.name)}`;
      case 'binary_expr':
        return `the expression with ${String(node.operator)}`;
      case 'unary_expr':
        return `the operator ${String(node.operator)}`;
      case 'case':
        return 'CASE';
      case 'hex_string':
      case 'bit_string':
        return `the ${node.type.replace('_', ' ')} literal`;
      case 'interval':
        return 'an INTERVAL';
      case 'expr_list':
        return 'a list or row value (write (a = 1 AND b = 2) OR ... instead of (a, b) IN (...))';
      default:
        return `${String(node.type ?? 'an unknown part')}`;
    }
  }
}

function functionName(node: Node): string {
  const name = node.name;
  if (typeof name === 'string') return name;
  if (Array.isArray(name?.name)) return name.name.map((part: Node) => String(part.value)).join('.');
  return String(name?.name ?? 'function');
}
