-- The schema of a new store, pinned by tests/test_store.py (the change-log triggers
-- are made from the columns). A migration that changes it changes this file.

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
                               OR last_review_date IS date(last_review_date, '+0 days')), days_to_first_review INTEGER
  GENERATED ALWAYS AS (CAST(julianday(first_review_date) - julianday(start_date) AS INTEGER))
  VIRTUAL, length_days INTEGER
  GENERATED ALWAYS AS (CAST(julianday(end_date) - julianday(start_date) AS INTEGER)) VIRTUAL,
  UNIQUE (ehm_number, start_date),
  CHECK (end_date IS NULL OR end_date >= start_date),
  CHECK ((status = 'closed') = (end_date IS NOT NULL)),
  CHECK (ended_as IS NULL OR status = 'closed'),
  CHECK (first_review_date IS NULL OR first_review_date >= start_date),
  CHECK (last_review_date IS NULL OR first_review_date IS NULL OR last_review_date >= first_review_date)
);

CREATE TABLE children (
  id INTEGER PRIMARY KEY,
  episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
  name TEXT NOT NULL CHECK (trim(name) <> ''),
  date_of_birth TEXT CHECK (date_of_birth IS NULL OR date_of_birth IS date(date_of_birth, '+0 days'))
);

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

CREATE TABLE audit_requests (
  id INTEGER PRIMARY KEY,
  episode_id INTEGER NOT NULL REFERENCES episodes(id),
  month TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
  reason TEXT NOT NULL CHECK (trim(reason) <> ''),
  requested_by_id INTEGER REFERENCES practitioners(id),
  requested_on TEXT NOT NULL CHECK (requested_on IS date(requested_on, '+0 days')),
  recorded_by TEXT NOT NULL,
  UNIQUE (episode_id, month)
);

CREATE TABLE selection_draws (
  id INTEGER PRIMARY KEY,
  month TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
  current INTEGER NOT NULL DEFAULT 1 CHECK (current IN (0, 1)),
  seed INTEGER NOT NULL,
  drawn_on TEXT NOT NULL CHECK (drawn_on IS date(drawn_on, '+0 days')),
  drawn_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  drawn_by TEXT NOT NULL,
  redraw_reason TEXT,
  -- the settings in force when drawn, so the draw can be explained later
  council_quota INTEGER NOT NULL CHECK (council_quota >= 0),
  partner_quota INTEGER NOT NULL CHECK (partner_quota >= 0),
  closed_quota INTEGER NOT NULL CHECK (closed_quota >= 0),
  drift_open_months INTEGER NOT NULL,
  drift_review_months INTEGER NOT NULL,
  exclude_audited_months INTEGER NOT NULL,
  due_days INTEGER NOT NULL,
  -- how many cases each random draw chose among (after exclusions)
  council_pool INTEGER NOT NULL,
  partner_pool INTEGER NOT NULL,
  closed_pool INTEGER NOT NULL,
  drifting INTEGER NOT NULL,
  excluded_audited INTEGER NOT NULL
, drift_quota INTEGER CHECK (drift_quota >= 0), drift_pool INTEGER CHECK (drift_pool >= 0));

CREATE TABLE selections (
  id INTEGER PRIMARY KEY,
  draw_id INTEGER NOT NULL REFERENCES selection_draws(id),
  episode_id INTEGER NOT NULL REFERENCES episodes(id),
  reason TEXT NOT NULL
    CHECK (reason IN ('random_council', 'random_partner', 'closed', 'drift', 'request')),
  request_id INTEGER REFERENCES audit_requests(id),
  auditor_id INTEGER REFERENCES practitioners(id),
  selected_on TEXT NOT NULL CHECK (selected_on IS date(selected_on, '+0 days')),
  due_date TEXT NOT NULL CHECK (due_date IS date(due_date, '+0 days') AND due_date >= selected_on),
  UNIQUE (draw_id, episode_id),
  CHECK (reason <> 'request' OR request_id IS NOT NULL)
);

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

CREATE TABLE letters (
  id INTEGER PRIMARY KEY,
  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,
  addressed_to_id INTEGER REFERENCES practitioners(id),
  drafted_on TEXT NOT NULL CHECK (drafted_on IS date(drafted_on, '+0 days')),
  html_path TEXT NOT NULL,
  text_path TEXT NOT NULL
);

CREATE TABLE service_user_feedback (
  id INTEGER PRIMARY KEY,
  episode_id INTEGER NOT NULL REFERENCES episodes(id),
  given_on TEXT NOT NULL CHECK (given_on IS date(given_on, '+0 days')),
  respondent TEXT NOT NULL CHECK (respondent IN ('child_young_person', 'parent_carer')),
  stage TEXT NOT NULL CHECK (stage IN ('end_of_assessment', 'taf_meeting', 'closure')),
  ratings TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(ratings)),
  comments TEXT,
  concern_raised INTEGER NOT NULL DEFAULT 0 CHECK (concern_raised IN (0, 1)),
  concern_theme TEXT,
  concern_detail TEXT,
  import_id INTEGER REFERENCES imports(id),
  UNIQUE (episode_id, given_on, respondent, stage),
  CHECK ((concern_raised = 1) = (concern_theme IS NOT NULL AND trim(concern_theme) <> ''))
);

CREATE TABLE self_assessments (
  id INTEGER PRIMARY KEY,
  episode_id INTEGER NOT NULL REFERENCES episodes(id),
  practitioner_id INTEGER NOT NULL REFERENCES practitioners(id),
  completed_on TEXT NOT NULL CHECK (completed_on IS date(completed_on, '+0 days')),
  template TEXT NOT NULL,
  notes TEXT,
  UNIQUE (episode_id, practitioner_id, completed_on)
);

CREATE TABLE self_assessment_items (
  self_assessment_id INTEGER NOT NULL REFERENCES self_assessments(id) ON DELETE CASCADE,
  item TEXT NOT NULL,
  met INTEGER NOT NULL CHECK (met IN (0, 1)),
  PRIMARY KEY (self_assessment_id, item)
);

CREATE TABLE agencies (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE CHECK (trim(name) <> ''),
  kind TEXT NOT NULL CHECK (kind IN ('council', 'partner')),
  sector TEXT NOT NULL CHECK (trim(sector) <> '')
);

CREATE TABLE users (
  login TEXT PRIMARY KEY CHECK (trim(login) <> '' AND login = trim(login)),
  practitioner_id INTEGER REFERENCES practitioners(id),
  roles TEXT NOT NULL CHECK (trim(roles) <> ''),
  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  changed_at TEXT NOT NULL
);

CREATE TABLE episode_counts (
  counted TEXT NOT NULL CHECK (counted IN ('began', 'ended', 'open_change')),
  month TEXT NOT NULL,            -- YYYY-MM
  how TEXT NOT NULL,              -- began_as, ended_as ('' where none); '' for open_change
  episodes INTEGER NOT NULL,
  PRIMARY KEY (counted, month, how)
) WITHOUT ROWID;

CREATE TABLE episode_days (
  counted TEXT NOT NULL CHECK (counted IN ('length', 'to_first_review')),
  month TEXT NOT NULL,            -- YYYY-MM: of the end, or of the first review
  days INTEGER NOT NULL,
  episodes INTEGER NOT NULL,
  PRIMARY KEY (counted, month, days)
) WITHOUT ROWID;

CREATE INDEX practitioners_line_manager ON practitioners(line_manager_id);

CREATE INDEX children_episode ON children(episode_id);

CREATE INDEX audits_episode ON audits(episode_id);

CREATE INDEX audits_date ON audits(audit_date);

CREATE INDEX audits_status ON audits(status);

CREATE INDEX actions_due ON actions(due_date);

CREATE INDEX actions_owner ON actions(owner_id);

CREATE INDEX change_log_audit ON change_log(audit_id);

CREATE INDEX change_log_row ON change_log(table_name, row_key);

CREATE INDEX audit_requests_month ON audit_requests(month);

CREATE UNIQUE INDEX selection_draws_one_current ON selection_draws(month) WHERE current = 1;

CREATE INDEX selections_episode ON selections(episode_id);

CREATE INDEX selections_auditor ON selections(auditor_id);

CREATE INDEX audits_date_episode ON audits(audit_date, episode_id);

CREATE INDEX audits_auditor1_status ON audits(auditor1_id, status);

CREATE INDEX moderations_audit ON moderations(audit_id);

CREATE INDEX discussions_audit ON discussions(audit_id);

CREATE INDEX one_to_one_meetings_audit ON one_to_one_meetings(audit_id);

CREATE INDEX letters_audit ON letters(audit_id);

CREATE INDEX service_user_feedback_given ON service_user_feedback(given_on);

CREATE INDEX self_assessments_episode ON self_assessments(episode_id);

CREATE INDEX self_assessments_completed ON self_assessments(completed_on);

CREATE INDEX audits_status_date ON audits(status, audit_date);

CREATE INDEX episodes_by_start ON episodes(start_date, end_date, lead_agency_id,
                                           referral_reason, began_as, ended_as);

CREATE INDEX answers_graded ON answers(audit_id, key, grade) WHERE grade IS NOT NULL;

CREATE INDEX moderations_latest ON moderations(audit_id, key, moderated_on, id, moderated_grade);

CREATE INDEX audits_updated ON audits(updated_at, id);

CREATE INDEX episodes_by_end ON episodes(end_date, start_date, lead_agency_id, referral_reason,
                                         began_as, ended_as, last_review_date, first_review_date);

CREATE INDEX service_user_feedback_concerns ON service_user_feedback(given_on, concern_theme)
  WHERE concern_raised = 1;

CREATE INDEX discussions_held ON discussions(held_on);

CREATE INDEX moderations_on ON moderations(moderated_on);

CREATE INDEX episodes_first_review ON episodes(first_review_date, days_to_first_review);

CREATE INDEX episodes_length ON episodes(end_date, length_days);

CREATE INDEX users_practitioner ON users(practitioner_id);

CREATE VIEW counted_audits AS
SELECT * FROM audits WHERE status IN ('submitted', 'moderated');

CREATE VIEW final_overall AS
SELECT a.id AS audit_id,
       coalesce(CASE WHEN a.status = 'moderated' THEN
                (SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = a.id AND m.key = 'overall'
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1) END,
                a.overall_grade) AS grade,
       a.audit_date
FROM audits a;

CREATE VIEW final_section_grades AS
SELECT an.audit_id, an.key,
       coalesce(CASE WHEN a.status = 'moderated' THEN
                (SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = an.audit_id AND m.key = an.key
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1) END,
                an.grade) AS grade,
       a.audit_date
FROM answers an JOIN audits a ON a.id = an.audit_id
WHERE an.grade IS NOT NULL;

CREATE VIEW final_grades AS
SELECT audit_id, 'overall' AS key, grade FROM final_overall
UNION ALL
SELECT audit_id, key, grade FROM final_section_grades;

CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
BEGIN SELECT RAISE(ABORT, 'the change log cannot be changed'); END;

CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
BEGIN SELECT RAISE(ABORT, 'the change log cannot be deleted from'); END;

CREATE TRIGGER count_episodes_insert AFTER INSERT ON episodes BEGIN INSERT INTO episode_counts (counted, month, how, episodes) SELECT * FROM (WITH g AS (SELECT counted, month, how, sum(n) AS n FROM (SELECT 'began' AS counted, substr(start_date, 1, 7) AS month, began_as AS how, 1 * count(*) AS n FROM (SELECT NEW.start_date AS start_date, NEW.end_date AS end_date, NEW.began_as AS began_as, NEW.ended_as AS ended_as, NEW.first_review_date AS first_review_date, NEW.length_days AS length_days, NEW.days_to_first_review AS days_to_first_review) AS e WHERE start_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'ended' AS counted, substr(end_date, 1, 7) AS month, coalesce(ended_as, ''), 1 * count(*) AS n FROM (SELECT NEW.start_date AS start_date, NEW.end_date AS end_date, NEW.began_as AS began_as, NEW.ended_as AS ended_as, NEW.first_review_date AS first_review_date, NEW.length_days AS length_days, NEW.days_to_first_review AS days_to_first_review) AS e WHERE end_date IS NOT NULL GROUP BY 2, 3) AS k GROUP BY counted, month, how) SELECT * FROM g UNION ALL SELECT 'open_change', month, '', sum(CASE counted WHEN 'began' THEN n ELSE -n END) FROM g GROUP BY 2) AS c WHERE n <> 0 ON CONFLICT (counted, month, how) DO UPDATE SET episodes = episode_counts.episodes + excluded.episodes; INSERT INTO episode_days (counted, month, days, episodes) SELECT * FROM (WITH g AS (SELECT counted, month, days, sum(n) AS n FROM (SELECT 'length' AS counted, substr(end_date, 1, 7) AS month, length_days AS days, 1 * count(*) AS n FROM (SELECT NEW.start_date AS start_date, NEW.end_date AS end_date, NEW.began_as AS began_as, NEW.ended_as AS ended_as, NEW.first_review_date AS first_review_date, NEW.length_days AS length_days, NEW.days_to_first_review AS days_to_first_review) AS e WHERE end_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'to_first_review' AS counted, substr(first_review_date, 1, 7) AS month, days_to_first_review, 1 * count(*) AS n FROM (SELECT NEW.start_date AS start_date, NEW.end_date AS end_date, NEW.began_as AS began_as, NEW.ended_as AS ended_as, NEW.first_review_date AS first_review_date, NEW.length_days AS length_days, NEW.days_to_first_review AS days_to_first_review) AS e WHERE first_review_date IS NOT NULL GROUP BY 2, 3) AS k GROUP BY counted, month, days) SELECT * FROM g) AS c WHERE n <> 0 ON CONFLICT (counted, month, days) DO UPDATE SET episodes = episode_days.episodes + excluded.episodes; END;

CREATE TRIGGER count_episodes_update AFTER UPDATE ON episodes WHEN OLD.start_date IS NOT NEW.start_date OR OLD.end_date IS NOT NEW.end_date OR OLD.began_as IS NOT NEW.began_as OR OLD.ended_as IS NOT NEW.ended_as OR OLD.first_review_date IS NOT NEW.first_review_date OR OLD.length_days IS NOT NEW.length_days OR OLD.days_to_first_review IS NOT NEW.days_to_first_review BEGIN INSERT INTO episode_counts (counted, month, how, episodes) SELECT * FROM (WITH g AS (SELECT counted, month, how, sum(n) AS n FROM (SELECT 'began' AS counted, substr(start_date, 1, 7) AS month, began_as AS how, -1 * count(*) AS n FROM (SELECT OLD.start_date AS start_date, OLD.end_date AS end_date, OLD.began_as AS began_as, OLD.ended_as AS ended_as, OLD.first_review_date AS first_review_date, OLD.length_days AS length_days, OLD.days_to_first_review AS days_to_first_review) AS e WHERE start_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'began' AS counted, substr(start_date, 1, 7) AS month, began_as AS how, 1 * count(*) AS n FROM (SELECT NEW.start_date AS start_date, NEW.end_date AS end_date, NEW.began_as AS began_as, NEW.ended_as AS ended_as, NEW.first_review_date AS first_review_date, NEW.length_days AS length_days, NEW.days_to_first_review AS days_to_first_review) AS e WHERE start_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'ended' AS counted, substr(end_date, 1, 7) AS month, coalesce(ended_as, ''), -1 * count(*) AS n FROM (SELECT OLD.start_date AS start_date, OLD.end_date AS end_date, OLD.began_as AS began_as, OLD.ended_as AS ended_as, OLD.first_review_date AS first_review_date, OLD.length_days AS length_days, OLD.days_to_first_review AS days_to_first_review) AS e WHERE end_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'ended' AS counted, substr(end_date, 1, 7) AS month, coalesce(ended_as, ''), 1 * count(*) AS n FROM (SELECT NEW.start_date AS start_date, NEW.end_date AS end_date, NEW.began_as AS began_as, NEW.ended_as AS ended_as, NEW.first_review_date AS first_review_date, NEW.length_days AS length_days, NEW.days_to_first_review AS days_to_first_review) AS e WHERE end_date IS NOT NULL GROUP BY 2, 3) AS k GROUP BY counted, month, how) SELECT * FROM g UNION ALL SELECT 'open_change', month, '', sum(CASE counted WHEN 'began' THEN n ELSE -n END) FROM g GROUP BY 2) AS c WHERE n <> 0 ON CONFLICT (counted, month, how) DO UPDATE SET episodes = episode_counts.episodes + excluded.episodes; INSERT INTO episode_days (counted, month, days, episodes) SELECT * FROM (WITH g AS (SELECT counted, month, days, sum(n) AS n FROM (SELECT 'length' AS counted, substr(end_date, 1, 7) AS month, length_days AS days, -1 * count(*) AS n FROM (SELECT OLD.start_date AS start_date, OLD.end_date AS end_date, OLD.began_as AS began_as, OLD.ended_as AS ended_as, OLD.first_review_date AS first_review_date, OLD.length_days AS length_days, OLD.days_to_first_review AS days_to_first_review) AS e WHERE end_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'length' AS counted, substr(end_date, 1, 7) AS month, length_days AS days, 1 * count(*) AS n FROM (SELECT NEW.start_date AS start_date, NEW.end_date AS end_date, NEW.began_as AS began_as, NEW.ended_as AS ended_as, NEW.first_review_date AS first_review_date, NEW.length_days AS length_days, NEW.days_to_first_review AS days_to_first_review) AS e WHERE end_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'to_first_review' AS counted, substr(first_review_date, 1, 7) AS month, days_to_first_review, -1 * count(*) AS n FROM (SELECT OLD.start_date AS start_date, OLD.end_date AS end_date, OLD.began_as AS began_as, OLD.ended_as AS ended_as, OLD.first_review_date AS first_review_date, OLD.length_days AS length_days, OLD.days_to_first_review AS days_to_first_review) AS e WHERE first_review_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'to_first_review' AS counted, substr(first_review_date, 1, 7) AS month, days_to_first_review, 1 * count(*) AS n FROM (SELECT NEW.start_date AS start_date, NEW.end_date AS end_date, NEW.began_as AS began_as, NEW.ended_as AS ended_as, NEW.first_review_date AS first_review_date, NEW.length_days AS length_days, NEW.days_to_first_review AS days_to_first_review) AS e WHERE first_review_date IS NOT NULL GROUP BY 2, 3) AS k GROUP BY counted, month, days) SELECT * FROM g) AS c WHERE n <> 0 ON CONFLICT (counted, month, days) DO UPDATE SET episodes = episode_days.episodes + excluded.episodes; END;

CREATE TRIGGER count_episodes_delete AFTER DELETE ON episodes BEGIN INSERT INTO episode_counts (counted, month, how, episodes) SELECT * FROM (WITH g AS (SELECT counted, month, how, sum(n) AS n FROM (SELECT 'began' AS counted, substr(start_date, 1, 7) AS month, began_as AS how, -1 * count(*) AS n FROM (SELECT OLD.start_date AS start_date, OLD.end_date AS end_date, OLD.began_as AS began_as, OLD.ended_as AS ended_as, OLD.first_review_date AS first_review_date, OLD.length_days AS length_days, OLD.days_to_first_review AS days_to_first_review) AS e WHERE start_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'ended' AS counted, substr(end_date, 1, 7) AS month, coalesce(ended_as, ''), -1 * count(*) AS n FROM (SELECT OLD.start_date AS start_date, OLD.end_date AS end_date, OLD.began_as AS began_as, OLD.ended_as AS ended_as, OLD.first_review_date AS first_review_date, OLD.length_days AS length_days, OLD.days_to_first_review AS days_to_first_review) AS e WHERE end_date IS NOT NULL GROUP BY 2, 3) AS k GROUP BY counted, month, how) SELECT * FROM g UNION ALL SELECT 'open_change', month, '', sum(CASE counted WHEN 'began' THEN n ELSE -n END) FROM g GROUP BY 2) AS c WHERE n <> 0 ON CONFLICT (counted, month, how) DO UPDATE SET episodes = episode_counts.episodes + excluded.episodes; INSERT INTO episode_days (counted, month, days, episodes) SELECT * FROM (WITH g AS (SELECT counted, month, days, sum(n) AS n FROM (SELECT 'length' AS counted, substr(end_date, 1, 7) AS month, length_days AS days, -1 * count(*) AS n FROM (SELECT OLD.start_date AS start_date, OLD.end_date AS end_date, OLD.began_as AS began_as, OLD.ended_as AS ended_as, OLD.first_review_date AS first_review_date, OLD.length_days AS length_days, OLD.days_to_first_review AS days_to_first_review) AS e WHERE end_date IS NOT NULL GROUP BY 2, 3 UNION ALL SELECT 'to_first_review' AS counted, substr(first_review_date, 1, 7) AS month, days_to_first_review, -1 * count(*) AS n FROM (SELECT OLD.start_date AS start_date, OLD.end_date AS end_date, OLD.began_as AS began_as, OLD.ended_as AS ended_as, OLD.first_review_date AS first_review_date, OLD.length_days AS length_days, OLD.days_to_first_review AS days_to_first_review) AS e WHERE first_review_date IS NOT NULL GROUP BY 2, 3) AS k GROUP BY counted, month, days) SELECT * FROM g) AS c WHERE n <> 0 ON CONFLICT (counted, month, days) DO UPDATE SET episodes = episode_days.episodes + excluded.episodes; END;
