-- Sectors are the settings' alone: a council renames or adds one in agencies.sectors.
-- The import checks an agency's sector against them (rule UNKNOWN_SECTOR); the CHECK that
-- restated the list, and refused a renamed sector with "Please report this", is gone.
-- Dropping a CHECK rebuilds the table: its rows keep their ids, and the practitioners and
-- episodes that name them are checked again when the migration commits.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE agencies_before_0110 AS SELECT id, name, kind, sector FROM agencies;
DROP TABLE agencies;
CREATE TABLE agencies (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (trim(name) <> ''),
  kind TEXT NOT NULL CHECK (kind IN ('council', 'partner')),
  sector TEXT NOT NULL CHECK (trim(sector) <> '')
);
INSERT INTO agencies (id, name, kind, sector) SELECT id, name, kind, sector FROM agencies_before_0110;
DROP TABLE temp.agencies_before_0110;
