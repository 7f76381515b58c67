-- test.sql — run by SQLite's shell both natively and on our engine; the outputs must be
-- identical. Deterministic: no random(), no clock. Exercises the pager through WASI
-- (a file database larger than the cache, a journal, transactions and rollbacks), the
-- query planner and most of the SQL surface a real application uses.
.headers on
.mode list
PRAGMA cache_size = 50;
PRAGMA journal_mode = DELETE;
CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, joined TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customer(id), amount REAL, note BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO customer SELECT i, 'customer ' || i, CASE i % 5 WHEN 0 THEN 'Oslo' WHEN 1 THEN 'Lima' WHEN 2 THEN 'Kyiv'
  WHEN 3 THEN 'Pune' ELSE 'Nice' END, date('2020-01-01', '+' || (i % 1000) || ' days') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO orders SELECT i, 1 + (i * 7919) % 2000, round((i * 37 % 1000) / 7.0, 2), zeroblob(i % 300) FROM n;
CREATE INDEX orders_customer ON orders(customer);
SELECT count(*), sum(amount), min(amount), max(amount), total(length(note)) FROM orders;
SELECT city, count(*) AS n, round(avg(o.amount), 4) AS avg_amount
  FROM customer c JOIN orders o ON o.customer = c.id GROUP BY city ORDER BY city;
SELECT name, rank FROM (SELECT c.name, rank() OVER (ORDER BY sum(o.amount) DESC) AS rank
  FROM customer c JOIN orders o ON o.customer = c.id GROUP BY c.id) WHERE rank <= 5;
BEGIN;
DELETE FROM orders WHERE amount > 100;
SELECT count(*) AS during_transaction FROM orders;
ROLLBACK;
SELECT count(*) AS after_rollback FROM orders;
UPDATE customer SET city = upper(city) WHERE id % 3 = 0;
SELECT city, count(*) FROM customer GROUP BY city ORDER BY 1;
SELECT json_object('id', id, 'name', name, 'tags', json_array(city, joined)) FROM customer WHERE id IN (1, 500, 2000);
SELECT printf('%08.3f|%-6s|%x', amount, 'ab', id), hex(substr(note, 1, 4)) FROM orders WHERE id BETWEEN 298 AND 302;
SELECT strftime('%Y-%W', joined), count(*) FROM customer GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3;
CREATE VIEW big_spenders AS SELECT customer, sum(amount) AS s FROM orders GROUP BY customer HAVING s > 1500;
SELECT count(*), round(sum(s), 2) FROM big_spenders;
CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO kv VALUES ('a', 1), ('b', 'two'), ('c', x'0304'), ('d', NULL), ('e', 2.5);
INSERT INTO kv VALUES ('a', 9) ON CONFLICT(k) DO UPDATE SET v = v + excluded.v;
SELECT k, typeof(v), quote(v) FROM kv ORDER BY k;
EXPLAIN QUERY PLAN SELECT * FROM orders WHERE customer = 5;
PRAGMA integrity_check;
VACUUM;
PRAGMA page_count;
