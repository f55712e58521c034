/**
 * What a DDL statement from the binlog does to tables, as far as the source
 * cares: which tables lose all their rows (TRUNCATE, DROP, CREATE OR
 * REPLACE), which change name, which change shape. Column changes need no
 * parsing: every row event carries its table's shape (binlog_row_metadata=FULL).
 */
export type DdlEffect =
  | { op: 'truncate' | 'drop' | 'create' | 'replace' | 'alter'; table: string }
  | { op: 'rename'; table: string; to: string };

/** Effects of `sql`, run with `defaultSchema` as the current database; [] for anything else. */
export function parseDdl(sql: string, defaultSchema: string): DdlEffect[] {
  const reader = new Reader(sql, defaultSchema);
  try {
    return readStatement(reader);
  } catch {
    return []; // not a statement we understand: no effect on captured tables
  }
}

function readStatement(r: Reader): DdlEffect[] {
  if (r.keyword('TRUNCATE')) {
    r.keyword('TABLE');
    return [{ op: 'truncate', table: r.tableName() }];
  }
  if (r.keyword('DROP')) {
    if (r.keyword('TEMPORARY') || !r.keyword('TABLE')) return [];
    if (r.keyword('IF')) r.expect('EXISTS');
    return r.list(() => ({ op: 'drop', table: r.tableName() }));
  }
  if (r.keyword('RENAME')) {
    if (!r.keyword('TABLE')) return [];
    return r.list(() => {
      const table = r.tableName();
      r.keyword('WAIT') || r.keyword('NOWAIT');
      r.expect('TO');
      return { op: 'rename', table, to: r.tableName() };
    });
  }
  if (r.keyword('CREATE')) {
    const replace = r.keyword('OR') && r.expect('REPLACE');
    if (r.keyword('TEMPORARY') || !r.keyword('TABLE')) return [];
    if (r.keyword('IF')) r.expect('NOT') && r.expect('EXISTS');
    return [{ op: replace ? 'replace' : 'create', table: r.tableName() }];
  }
  if (r.keyword('ALTER')) {
    while (r.keyword('ONLINE') || r.keyword('OFFLINE') || r.keyword('IGNORE'));
    if (!r.keyword('TABLE')) return [];
    if (r.keyword('IF')) r.expect('EXISTS');
    const table = r.tableName();
    const renamedTo = r.findTableRename();
    return renamedTo ? [{ op: 'rename', table, to: renamedTo }] : [{ op: 'alter', table }];
  }
  return [];
}

const IDENTIFIER = /^[A-Za-z0-9_$\u0080-\uffff]+/;

class Reader {
  private at = 0;
  constructor(private readonly sql: string, private readonly defaultSchema: string) {}

  keyword(word: string): boolean {
    this.skipSpace();
    const match = IDENTIFIER.exec(this.sql.slice(this.at));
    if (!match || match[0].toUpperCase() !== word) return false;
    this.at += match[0].length;
    return true;
  }

  expect(word: string): true {
    if (!this.keyword(word)) throw new Error(`expected ${word}`);
    return true;
  }

  /** `name` or `schema`.`name`, backquoted or not, as `schema.name`. */
  tableName(): string {
    const first = this.identifier();
    this.skipSpace();
    if (this.sql[this.at] !== '.') return `${this.defaultSchema}.${first}`;
    this.at++;
    return `${first}.${this.identifier()}`;
  }

  list<T>(item: () => T): T[] {
    const items = [item()];
    while (this.punctuation(',')) items.push(item());
    return items;
  }

  /** ALTER TABLE ... RENAME [TO | AS] new_name (but not RENAME COLUMN / INDEX / KEY). */
  findTableRename(): string | null {
    const rest = this.sql.slice(this.at);
    const match = /(?:^|[\s,])RENAME\s+(?!(?:COLUMN|INDEX|KEY)\b)(?:(?:TO|AS)\s+)?/i.exec(rest);
    if (!match) return null;
    this.at += match.index + match[0].length;
    return this.tableName();
  }

  private punctuation(char: string): boolean {
    this.skipSpace();
    if (this.sql[this.at] !== char) return false;
    this.at++;
    return true;
  }

  private identifier(): string {
    this.skipSpace();
    if (this.sql[this.at] === '`') {
      let name = '';
      for (let i = this.at + 1; i < this.sql.length; i++) {
        if (this.sql[i] !== '`') name += this.sql[i];
        else if (this.sql[i + 1] === '`') name += this.sql[i++];
        else {
          this.at = i + 1;
          return name;
        }
      }
      throw new Error('unterminated quoted identifier');
    }
    const match = IDENTIFIER.exec(this.sql.slice(this.at));
    if (!match) throw new Error('expected an identifier');
    this.at += match[0].length;
    return match[0];
  }

  /** Whitespace and comments (`/* *\/`, `-- `, `#`). */
  private skipSpace(): void {
    const space = /^(?:\s+|\/\*[\s\S]*?\*\/|--(?:\s[^\n]*)?(?:\n|$)|#[^\n]*(?:\n|$))*/.exec(this.sql.slice(this.at));
    this.at += space ? space[0].length : 0;
  }
}
