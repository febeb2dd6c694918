-- Closing the loop after an audit: telling the worker, the reflective discussion (guidance
-- 11, 13-15), the 1-1 meeting where practice is not good enough, and letters to the author's
-- manager where it is inadequate (framework: "write to the ... author's manager").

-- One row per audit: the dates the worker was told and the feedback summary was returned.
CREATE TABLE audit_followups (
  audit_id INTEGER PRIMARY KEY REFERENCES audits(id) ON DELETE CASCADE,
  worker_notified_date TEXT
    CHECK (worker_notified_date IS NULL OR worker_notified_date IS date(worker_notified_date, '+0 days')),
  feedback_sent_date TEXT
    CHECK (feedback_sent_date IS NULL OR feedback_sent_date IS date(feedback_sent_date, '+0 days'))
);

CREATE TABLE discussions (
  id INTEGER PRIMARY KEY,
  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
  held_on TEXT NOT NULL CHECK (held_on IS date(held_on, '+0 days')),
  learning TEXT NOT NULL CHECK (trim(learning) <> ''),
  notes TEXT
);
CREATE INDEX discussions_audit ON discussions(audit_id);

CREATE TABLE discussion_attendees (
  discussion_id INTEGER NOT NULL REFERENCES discussions(id) ON DELETE CASCADE,
  practitioner_id INTEGER NOT NULL REFERENCES practitioners(id),
  role TEXT NOT NULL CHECK (role IN ('worker', 'line_manager', 'auditor', 'other')),
  PRIMARY KEY (discussion_id, practitioner_id)
);

CREATE TABLE one_to_one_meetings (
  id INTEGER PRIMARY KEY,
  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
  professional_id INTEGER NOT NULL REFERENCES practitioners(id),
  held_by_id INTEGER REFERENCES practitioners(id),
  held_on TEXT NOT NULL CHECK (held_on IS date(held_on, '+0 days')),
  notes TEXT NOT NULL CHECK (trim(notes) <> '')
);
CREATE INDEX one_to_one_meetings_audit ON one_to_one_meetings(audit_id);

-- A drafted letter (nothing is emailed): where feedback on an inadequate assessment went.
CREATE TABLE letters (
  id INTEGER PRIMARY KEY,
  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
  addressed_to_id INTEGER REFERENCES practitioners(id),
  drafted_on TEXT NOT NULL CHECK (drafted_on IS date(drafted_on, '+0 days')),
  html_path TEXT NOT NULL,
  text_path TEXT NOT NULL
);
CREATE INDEX letters_audit ON letters(audit_id);
