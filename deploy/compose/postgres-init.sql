-- The quick start's demo schema: the service captures these two tables.
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, balance numeric(12,2), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers, note text);
INSERT INTO customers (id, name, balance) VALUES (1, 'Ada', 10.50), (2, 'Grace', 0);
INSERT INTO orders VALUES (1, 1, 'first order');
-- A user that may replicate and read (the service creates its slot and publication).
CREATE ROLE cdc WITH LOGIN REPLICATION PASSWORD 'cdc-password';
GRANT SELECT ON ALL TABLES IN SCHEMA public TO cdc;
GRANT CREATE ON DATABASE shop TO cdc;
ALTER TABLE customers OWNER TO cdc;
ALTER TABLE orders OWNER TO cdc;
