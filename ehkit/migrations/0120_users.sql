-- Logins and roles (issue 17): who may use ehkit, as whom, and in which roles. A login maps
-- to the practitioner it acts as; roles are the names in settings [roles], space-separated.
-- A removed login is kept, inactive, so the change log's history still names it.
CREATE TABLE users (
  login TEXT PRIMARY KEY CHECK (trim(login) <> '' AND login = trim(login)),
  practitioner_id INTEGER REFERENCES practitioners(id),
  roles TEXT NOT NULL CHECK (trim(roles) <> ''),
  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  changed_at TEXT NOT NULL
);

CREATE INDEX users_practitioner ON users(practitioner_id);
