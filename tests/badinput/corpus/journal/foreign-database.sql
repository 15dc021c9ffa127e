-- Someone else's SQLite database, copied or linked in as journal.sqlite: refused untouched.
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com');
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('owner', 'not uvctl');
