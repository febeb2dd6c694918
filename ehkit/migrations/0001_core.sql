-- The core store: agencies, practitioners, episodes, children, audits and what hangs off them.
-- Dates are ISO text guarded by CHECKs: date(x, '+0 days') normalises 2026-02-31, so only
-- real dates equal themselves.

CREATE TABLE agencies (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (trim(name) <> ''),
  kind TEXT NOT NULL CHECK (kind IN ('council', 'partner')),
  sector TEXT NOT NULL CHECK (sector IN
    ('Health', 'Education', 'Voluntary', 'Local Authority', 'Police', 'Housing', 'Other'))
);

CREATE TABLE practitioners (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL CHECK (trim(name) <> ''),
  role TEXT,
  agency_id INTEGER NOT NULL REFERENCES agencies(id),
  team TEXT,
  line_manager_id INTEGER REFERENCES practitioners(id),
  is_auditor INTEGER NOT NULL DEFAULT 0 CHECK (is_auditor IN (0, 1)),
  CHECK (line_manager_id IS NULL OR line_manager_id <> id)
);
CREATE INDEX practitioners_line_manager ON practitioners(line_manager_id);

CREATE TABLE episodes (
  id INTEGER PRIMARY KEY,
  ehm_number TEXT NOT NULL CHECK (trim(ehm_number) <> ''),
  start_date TEXT NOT NULL CHECK (start_date IS date(start_date, '+0 days')),
  end_date TEXT CHECK (end_date IS NULL OR end_date IS date(end_date, '+0 days')),
  status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  lead_professional_id INTEGER REFERENCES practitioners(id),
  lead_agency_id INTEGER NOT NULL REFERENCES agencies(id),
  team_manager_id INTEGER REFERENCES practitioners(id),
  referral_reason TEXT,
  began_as TEXT NOT NULL DEFAULT 'new_request'
    CHECK (began_as IN ('new_request', 'step_down', 'other')),
  cross_authority INTEGER NOT NULL DEFAULT 0 CHECK (cross_authority IN (0, 1)),
  cross_authority_name TEXT,
  cross_authority_contact TEXT,
  ended_as TEXT CHECK (ended_as IN ('outcomes_achieved', 'stepped_up', 'stepped_down_universal',
                                    'disengaged', 'moved_away', 'other')),
  first_review_date TEXT CHECK (first_review_date IS NULL
                                OR first_review_date IS date(first_review_date, '+0 days')),
  last_review_date TEXT CHECK (last_review_date IS NULL
                               OR last_review_date IS date(last_review_date, '+0 days')),
  UNIQUE (ehm_number, start_date),
  CHECK (end_date IS NULL OR end_date >= start_date),
  CHECK ((status = 'closed') = (end_date IS NOT NULL)),
  CHECK (ended_as IS NULL OR status = 'closed'),
  CHECK (first_review_date IS NULL OR first_review_date >= start_date),
  CHECK (last_review_date IS NULL OR first_review_date IS NULL OR last_review_date >= first_review_date)
);
CREATE INDEX episodes_start ON episodes(start_date);
CREATE INDEX episodes_end ON episodes(end_date);
CREATE INDEX episodes_lead_professional ON episodes(lead_professional_id);
CREATE INDEX episodes_lead_agency ON episodes(lead_agency_id);

CREATE TABLE children (
  id INTEGER PRIMARY KEY,
  episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
  name TEXT NOT NULL CHECK (trim(name) <> ''),
  date_of_birth TEXT CHECK (date_of_birth IS NULL OR date_of_birth IS date(date_of_birth, '+0 days'))
);
CREATE INDEX children_episode ON children(episode_id);

CREATE TABLE audits (
  id INTEGER PRIMARY KEY,
  episode_id INTEGER NOT NULL REFERENCES episodes(id),
  template TEXT NOT NULL,
  auditor1_id INTEGER NOT NULL REFERENCES practitioners(id),
  auditor2_id INTEGER REFERENCES practitioners(id),
  audit_date TEXT NOT NULL CHECK (audit_date IS date(audit_date, '+0 days')),
  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'submitted', 'moderated')),
  summary TEXT,
  overall_grade INTEGER CHECK (overall_grade BETWEEN 1 AND 4),
  overall_reasons TEXT,
  learning TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  submitted_at TEXT,
  CHECK (auditor2_id IS NULL OR auditor2_id <> auditor1_id),
  CHECK (status = 'draft' OR submitted_at IS NOT NULL)
);
CREATE INDEX audits_episode ON audits(episode_id);
CREATE INDEX audits_date ON audits(audit_date);
CREATE INDEX audits_status ON audits(status);

-- One row per answered key: a section's grade, an item's comment or a question's Yes/No/NA.
CREATE TABLE answers (
  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  grade INTEGER CHECK (grade BETWEEN 1 AND 4),
  comment TEXT,
  response TEXT CHECK (response IN ('yes', 'no', 'not_applicable')),
  PRIMARY KEY (audit_id, key)
);

CREATE TABLE checklist_answers (
  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
  item TEXT NOT NULL,
  status TEXT CHECK (status IN ('accurate', 'not_accurate', 'not_recorded')),
  note TEXT,
  PRIMARY KEY (audit_id, item)
);

CREATE TABLE actions (
  id INTEGER PRIMARY KEY,
  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
  number INTEGER NOT NULL CHECK (number >= 1),
  action TEXT NOT NULL,
  by_whom TEXT,
  owner_id INTEGER REFERENCES practitioners(id),
  due_date TEXT CHECK (due_date IS NULL OR due_date IS date(due_date, '+0 days')),
  discussed_date TEXT CHECK (discussed_date IS NULL OR discussed_date IS date(discussed_date, '+0 days')),
  agreed_by TEXT,
  completed_date TEXT CHECK (completed_date IS NULL OR completed_date IS date(completed_date, '+0 days')),
  completion_note TEXT,
  UNIQUE (audit_id, number)
);
CREATE INDEX actions_due ON actions(due_date);
CREATE INDEX actions_owner ON actions(owner_id);

-- Moderation keeps both grades: the auditor's (original) and the moderator's.
CREATE TABLE moderations (
  id INTEGER PRIMARY KEY,
  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
  key TEXT NOT NULL,                       -- a section key, or 'overall'
  moderator_id INTEGER NOT NULL REFERENCES practitioners(id),
  moderated_on TEXT NOT NULL CHECK (moderated_on IS date(moderated_on, '+0 days')),
  original_grade INTEGER CHECK (original_grade BETWEEN 1 AND 4),
  moderated_grade INTEGER NOT NULL CHECK (moderated_grade BETWEEN 1 AND 4),
  reason TEXT,
  UNIQUE (audit_id, key, moderator_id),
  CHECK (moderated_grade = original_grade OR trim(coalesce(reason, '')) <> '')
);

-- Each import of a file is kept with its hash, so a figure can be traced to its source.
CREATE TABLE imports (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  file_name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  rows_read INTEGER NOT NULL,
  inserted INTEGER NOT NULL,
  updated INTEGER NOT NULL,
  unchanged INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  imported_by TEXT NOT NULL,
  CHECK (rows_read = inserted + updated + unchanged + rejected)
);

-- The change log: written only by triggers (see ehkit/db.py), never changed afterwards.
CREATE TABLE change_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  user TEXT NOT NULL,
  actor TEXT,
  table_name TEXT NOT NULL,
  row_key TEXT,
  audit_id INTEGER,
  field TEXT,          -- NULL for a whole-row insert or delete (old/new hold the row as JSON)
  old,
  new,
  reason TEXT,
  hash TEXT NOT NULL
);
CREATE INDEX change_log_audit ON change_log(audit_id);
CREATE INDEX change_log_row ON change_log(table_name, row_key);

CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
BEGIN SELECT RAISE(ABORT, 'the change log cannot be changed'); END;

CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
BEGIN SELECT RAISE(ABORT, 'the change log cannot be deleted from'); END;
