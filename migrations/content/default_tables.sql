-- The default content tables, made only for a new store (`migrate --create`, `demo`) whose config maps the defaults;
-- never by a ledger migration, which touches only cs_* objects (an existing archive keeps its own tables).
-- IDs are 64-bit snowflakes stored as INTEGER; the code reads them with safeIntegers and never as numbers.

CREATE TABLE tweets (
  id                INTEGER PRIMARY KEY,
  author_id         INTEGER,
  created_at        TEXT,
  text              TEXT,
  geo_lat           REAL,
  geo_lon           REAL,
  place_id          TEXT,
  raw_json          TEXT,
  compliance_state  TEXT,
  compliance_reason TEXT,
  compliance_at     TEXT
);
CREATE INDEX tweets_author_id ON tweets(author_id);

CREATE TABLE users (
  id                INTEGER PRIMARY KEY,
  username          TEXT,
  name              TEXT,
  created_at        TEXT,
  raw_json          TEXT,
  compliance_state  TEXT,
  compliance_reason TEXT,
  compliance_at     TEXT
);
