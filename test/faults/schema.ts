// The tables every fault case captures, per source kind: a customers table,
// a bigint-keyed orders table and a composite-key order_items table, so the
// comparison covers one key shape of each kind.
export type SourceKind = 'postgres' | 'mariadb';

export const TABLES = ['customers', 'orders', 'order_items'] as const;

/** `payload` is where the big-value case puts its 50 MB values. */
export const PG_SCHEMA = `
  CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, balance numeric(12,2), n int NOT NULL DEFAULT 0,
                          updated_at timestamptz(6) NOT NULL DEFAULT now());
  CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, note text, payload text);
  CREATE TABLE order_items (order_id bigint, line_no int, qty int NOT NULL, PRIMARY KEY (order_id, line_no));
`;

export const MARIADB_SCHEMA = `
  CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, balance DECIMAL(12,2), n INT NOT NULL DEFAULT 0,
                          updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
  CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT, note VARCHAR(200), payload LONGTEXT);
  CREATE TABLE order_items (order_id BIGINT, line_no INT, qty INT NOT NULL, PRIMARY KEY (order_id, line_no));
`;

/** Rows present before the service starts, so the snapshot takes a few seconds. */
export function seedSql(kind: SourceKind, customers: number): string[] {
  if (kind === 'postgres') {
    return [
      `INSERT INTO customers (id, name, balance) SELECT g, 'seed ' || g, g * 1.25 FROM generate_series(1, ${customers}) g`,
      `INSERT INTO orders (id, customer_id, note) SELECT g, g, 'seed order ' || g FROM generate_series(1, ${Math.ceil(customers / 2)}) g`,
      `INSERT INTO order_items SELECT g, l, l FROM generate_series(1, ${Math.ceil(customers / 4)}) g, generate_series(1, 2) l`,
    ];
  }
  // MariaDB's sequence engine: seq_1_to_N.
  return [
    `INSERT INTO customers (id, name, balance) SELECT seq, CONCAT('seed ', seq), seq * 1.25 FROM seq_1_to_${customers}`,
    `INSERT INTO orders (id, customer_id, note) SELECT seq, seq, CONCAT('seed order ', seq) FROM seq_1_to_${Math.ceil(customers / 2)}`,
    `INSERT INTO order_items SELECT g.seq, l.seq, l.seq FROM seq_1_to_${Math.ceil(customers / 4)} g, seq_1_to_2 l`,
  ];
}
