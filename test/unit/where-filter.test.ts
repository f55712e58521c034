import { strict as assert } from 'node:assert';
import { checkWhere, compileWhere, WhereDialect, WhereFilterError } from '../../connectors/shared/where-filter';

const PG = { dialect: 'postgresql' as WhereDialect, table: 'public.accounts', columns: ['id', 'owner', 'balance', 'Created At'] };
const MARIA = { dialect: 'mariadb' as WhereDialect, table: 'shop.accounts', columns: ['id', 'owner', 'balance'] };
const pgParam = (i: number) => `$${i + 10}`;

function refused(where: string, target: typeof PG, message: RegExp): void {
  assert.throws(
    () => checkWhere(where, target),
    (error: Error) => {
      assert.ok(error instanceof WhereFilterError, `a WhereFilterError, got ${error}`);
      assert.match(error.message, message);
      return true;
    },
    `${where} must be refused`,
  );
}

describe('resync --where: parsed, checked and rendered, never pasted', () => {
  it('renders an accepted Postgres condition from the parse tree, strings as bind parameters', () => {
    const rendered = compileWhere(`id > 5 AND owner LIKE 'o''brien%' AND balance IN (1, 2, -3) AND NOT (balance BETWEEN 10 AND 20) OR owner IS NOT NULL`, PG, pgParam);
    assert.equal(rendered.sql, `(((("id" > 5) AND ("owner" LIKE $10)) AND (("balance" IN (1, 2, -3)) AND (NOT ("balance" BETWEEN 10 AND 20)))) OR ("owner" IS NOT NULL))`);
    assert.deepEqual(rendered.params, ["o'brien%"]);
  });

  it('takes a Postgres dollar-quoted string as it is (no escapes)', () => {
    assert.deepEqual(compileWhere('owner LIKE $$a\\b%$$', PG, pgParam), { sql: '("owner" LIKE $10)', params: ['a\\b%'] });
  });

  it('folds unquoted Postgres names and keeps quoted ones; a qualifier must be the table itself', () => {
    assert.equal(compileWhere(`ID = 1 AND "Created At" IS NULL AND accounts.owner = 'x'`, PG, pgParam).sql, `((("id" = 1) AND ("Created At" IS NULL)) AND ("owner" = $10))`);
    refused(`"ID" = 1`, PG, /ID is not a column of public\.accounts \(its columns: id, owner, balance, Created At\)/);
    refused(`other.id = 1`, PG, /other\.id is not a column of public\.accounts/);
  });

  it('renders a MariaDB condition with backquoted names, decoding backslash escapes into the parameter', () => {
    const rendered = compileWhere(`ID >= 5 and owner = 'it\\'s' and owner <> "x" and owner not like 'a\\%'`, MARIA, () => '?');
    assert.equal(rendered.sql, "((((`id` >= 5) AND (`owner` = ?)) AND (`owner` <> ?)) AND (`owner` NOT LIKE ?))");
    assert.deepEqual(rendered.params, ["it's", 'x', 'a\\%']);
  });

  it('refuses the MariaDB UNION injection, naming it', () => {
    refused('0) UNION SELECT user, password FROM mysql.user WHERE (1', MARIA, /UNION is not allowed/);
  });

  it('refuses a function call on Postgres, naming the function', () => {
    refused(`pg_drop_replication_slot('x') IS NULL`, PG, /the function call pg_drop_replication_slot\(\.\.\.\)/);
    refused(`owner = lower('X')`, PG, /the function call lower\(\.\.\.\)/);
    refused(`EXISTS (SELECT 1)`, PG, /a subquery \(SELECT\) is not allowed/);
  });

  it('refuses comments and semicolons, even where the parser would drop them', () => {
    refused('id > 5 -- comment', PG, /comments are not allowed \("-- comment"\)/);
    refused('id > 5 /* x */', PG, /comments are not allowed/);
    refused('id > 5 # x', MARIA, /comments are not allowed/);
    refused('id > 5; DROP TABLE accounts', PG, /a semicolon is not allowed/);
    assert.doesNotThrow(() => checkWhere(`owner = 'a -- b; c /* d */'`, PG), 'inside a string they are plain text');
  });

  it('refuses columns that are not in the table', () => {
    refused('password IS NOT NULL', PG, /password is not a column of public\.accounts/);
    refused('nope = 1', MARIA, /nope is not a column of shop\.accounts \(its columns: id, owner, balance\)/);
  });

  it('refuses subqueries, casts, arithmetic, variables and clauses beyond a condition', () => {
    refused('id IN (SELECT id FROM accounts)', PG, /subquery/);
    refused('id::int / 0 = 1', PG, /refused/);
    refused("id = '5'::int", PG, /a cast \(:: INT\)/);
    refused('balance + 1 > 5', PG, /the expression with \+/);
    refused('id = @@version', MARIA, /the variable @@version/);
    refused('id = $1', PG, /the variable \$1/);
    refused('id = 1 ORDER BY id', PG, /ORDER BY is not allowed/);
    refused('id = 1 LIMIT 5', MARIA, /LIMIT is not allowed/);
    refused('id = 1 FOR UPDATE', MARIA, /FOR UPDATE is not allowed/);
    refused('id IN (1, owner)', PG, /a value of IN \(\.\.\.\) must be a literal, not/);
    refused('1) OR (1', PG, /it is not one SQL condition at "\) OR \(1"/);
    refused(`(id, owner) IN ((1, 'a'))`, PG, /a list or row value/);
    refused('', PG, /it is empty/);
    refused(`owner = 'never closed`, PG, /never closed/);
  });
});
