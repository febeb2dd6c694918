-- ehkit baseline: the schema as of migration 0120 for PostgreSQL (ehkit/postgres.py).
-- The same tables, columns (in the same order), constraints, indexes and views as SQLite's
-- ../baseline.sql plus migrations 0100-0120, written in PostgreSQL's dialect. Where the
-- dialects differ it is only here: dates are ISO text checked by ehkit_is_date (SQLite:
-- x IS date(x, '+0 days')), GLOB is a regular expression, json_valid is ehkit_json_valid,
-- INTEGER is bigint, an INTEGER PRIMARY KEY's next id is ehkit_next_id, foreign keys are
-- DEFERRABLE (a copy loads tables in any order), and the change log's old/new are jsonb
-- (SQLite's untyped columns: a number stays a number).
-- A later SQLite migration NNNN_name.sql gets its PostgreSQL twin in this folder, same name.

CREATE EXTENSION IF NOT EXISTS pgcrypto;  -- hmac(): the change log keyed with the log key

-- An ISO date (YYYY-MM-DD) that exists, as a date; NULL for anything else.
CREATE FUNCTION ehkit_date(value text) RETURNS date LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF value !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN RETURN NULL; END IF;
  RETURN make_date(substr(value, 1, 4)::int, substr(value, 6, 2)::int, substr(value, 9, 2)::int);
EXCEPTION WHEN data_exception THEN RETURN NULL;
END $$;

-- SQLite's CHECK (x IS date(x, '+0 days')): NULL, or an ISO date that exists. A body in
-- SQL's own words (BEGIN ATOMIC) is bound when made, so pg_restore, which runs with an
-- empty search_path, still finds ehkit_date when it checks the rows it loads.
CREATE FUNCTION ehkit_is_date(value text) RETURNS boolean LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
  SELECT value IS NULL OR ehkit_date(value) IS NOT NULL;
END;

-- SQLite's json_valid(x).
CREATE FUNCTION ehkit_json_valid(value text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  PERFORM value::json;
  RETURN true;
EXCEPTION WHEN invalid_text_representation THEN RETURN false;
END $$;

-- A new row's id, as SQLite gives an INTEGER PRIMARY KEY one: one past the largest (so a row
-- inserted with its id given moves it on too). Writers take turns (ehkit.postgres), so two
-- never take the same. The change log's: from a counter that rolls back (migration 0133).
CREATE FUNCTION ehkit_next_id(t text) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE given bigint;
BEGIN
  EXECUTE format('SELECT coalesce(max(id), 0) + 1 FROM %I', t) INTO given;
  RETURN given;
END $$;

-- SQLite's strftime('%Y-%m-%dT%H:%M:%SZ', 'now').
CREATE FUNCTION ehkit_now() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

CREATE TABLE agencies (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('agencies'),
  name TEXT NOT NULL UNIQUE CHECK (trim(name) <> ''),
  kind TEXT NOT NULL CHECK (kind IN ('council', 'partner')),
  sector TEXT NOT NULL CHECK (trim(sector) <> '')
);

CREATE TABLE practitioners (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('practitioners'),
  name TEXT NOT NULL CHECK (trim(name) <> ''),
  role TEXT,
  agency_id bigint NOT NULL REFERENCES agencies(id) DEFERRABLE,
  team TEXT,
  line_manager_id bigint REFERENCES practitioners(id) DEFERRABLE,
  is_auditor bigint NOT NULL DEFAULT 0 CHECK (is_auditor IN (0, 1)),
  CHECK (line_manager_id IS NULL OR line_manager_id <> id)
);

CREATE TABLE episodes (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('episodes'),
  ehm_number TEXT NOT NULL CHECK (trim(ehm_number) <> ''),
  start_date TEXT NOT NULL CHECK (ehkit_is_date(start_date)),
  end_date TEXT CHECK (ehkit_is_date(end_date)),
  status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  lead_professional_id bigint REFERENCES practitioners(id) DEFERRABLE,
  lead_agency_id bigint NOT NULL REFERENCES agencies(id) DEFERRABLE,
  team_manager_id bigint REFERENCES practitioners(id) DEFERRABLE,
  referral_reason TEXT,
  began_as TEXT NOT NULL DEFAULT 'new_request'
    CHECK (began_as IN ('new_request', 'step_down', 'other')),
  cross_authority bigint NOT NULL DEFAULT 0 CHECK (cross_authority IN (0, 1)),
  cross_authority_name TEXT,
  cross_authority_contact TEXT,
  ended_as TEXT CHECK (ended_as IN ('outcomes_achieved', 'stepped_up', 'stepped_down_universal',
                                    'disengaged', 'moved_away', 'other')),
  first_review_date TEXT CHECK (ehkit_is_date(first_review_date)),
  last_review_date TEXT CHECK (ehkit_is_date(last_review_date)),
  days_to_first_review bigint
    GENERATED ALWAYS AS (ehkit_date(first_review_date) - ehkit_date(start_date)) STORED,
  length_days bigint GENERATED ALWAYS AS (ehkit_date(end_date) - ehkit_date(start_date)) STORED,
  UNIQUE (ehm_number, start_date),
  CHECK (end_date IS NULL OR end_date >= start_date),
  CHECK ((status = 'closed') = (end_date IS NOT NULL)),
  CHECK (ended_as IS NULL OR status = 'closed'),
  CHECK (first_review_date IS NULL OR first_review_date >= start_date),
  CHECK (last_review_date IS NULL OR first_review_date IS NULL OR last_review_date >= first_review_date)
);

CREATE TABLE children (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('children'),
  episode_id bigint NOT NULL REFERENCES episodes(id) ON DELETE CASCADE DEFERRABLE,
  name TEXT NOT NULL CHECK (trim(name) <> ''),
  date_of_birth TEXT CHECK (ehkit_is_date(date_of_birth))
);

CREATE TABLE audits (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('audits'),
  episode_id bigint NOT NULL REFERENCES episodes(id) DEFERRABLE,
  template TEXT NOT NULL,
  auditor1_id bigint NOT NULL REFERENCES practitioners(id) DEFERRABLE,
  auditor2_id bigint REFERENCES practitioners(id) DEFERRABLE,
  audit_date TEXT NOT NULL CHECK (ehkit_is_date(audit_date)),
  status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'submitted', 'moderated')),
  summary TEXT,
  overall_grade bigint CHECK (overall_grade BETWEEN 1 AND 4),
  overall_reasons TEXT,
  learning TEXT,
  created_at TEXT NOT NULL DEFAULT ehkit_now(),
  updated_at TEXT NOT NULL DEFAULT ehkit_now(),
  submitted_at TEXT,
  CHECK (auditor2_id IS NULL OR auditor2_id <> auditor1_id),
  CHECK (status = 'draft' OR submitted_at IS NOT NULL)
);

CREATE TABLE answers (
  audit_id bigint NOT NULL REFERENCES audits(id) ON DELETE CASCADE DEFERRABLE,
  key TEXT NOT NULL,
  grade bigint CHECK (grade BETWEEN 1 AND 4),
  comment TEXT,
  response TEXT CHECK (response IN ('yes', 'no', 'not_applicable')),
  PRIMARY KEY (audit_id, key)
);

CREATE TABLE checklist_answers (
  audit_id bigint NOT NULL REFERENCES audits(id) ON DELETE CASCADE DEFERRABLE,
  item TEXT NOT NULL,
  status TEXT CHECK (status IN ('accurate', 'not_accurate', 'not_recorded')),
  note TEXT,
  PRIMARY KEY (audit_id, item)
);

CREATE TABLE actions (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('actions'),
  audit_id bigint NOT NULL REFERENCES audits(id) ON DELETE CASCADE DEFERRABLE,
  number bigint NOT NULL CHECK (number >= 1),
  action TEXT NOT NULL,
  by_whom TEXT,
  owner_id bigint REFERENCES practitioners(id) DEFERRABLE,
  due_date TEXT CHECK (ehkit_is_date(due_date)),
  discussed_date TEXT CHECK (ehkit_is_date(discussed_date)),
  agreed_by TEXT,
  completed_date TEXT CHECK (ehkit_is_date(completed_date)),
  completion_note TEXT,
  UNIQUE (audit_id, number)
);

CREATE TABLE moderations (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('moderations'),
  audit_id bigint NOT NULL REFERENCES audits(id) ON DELETE CASCADE DEFERRABLE,
  key TEXT NOT NULL,                       -- a section key, or 'overall'
  moderator_id bigint NOT NULL REFERENCES practitioners(id) DEFERRABLE,
  moderated_on TEXT NOT NULL CHECK (ehkit_is_date(moderated_on)),
  original_grade bigint CHECK (original_grade BETWEEN 1 AND 4),
  moderated_grade bigint NOT NULL CHECK (moderated_grade BETWEEN 1 AND 4),
  reason TEXT,
  UNIQUE (audit_id, key, moderator_id),
  CHECK (moderated_grade = original_grade OR trim(coalesce(reason, '')) <> '')
);

CREATE TABLE imports (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('imports'),
  kind TEXT NOT NULL,
  file_name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  rows_read bigint NOT NULL,
  inserted bigint NOT NULL,
  updated bigint NOT NULL,
  unchanged bigint NOT NULL,
  rejected bigint NOT NULL,
  imported_at TEXT NOT NULL DEFAULT ehkit_now(),
  imported_by TEXT NOT NULL,
  CHECK (rows_read = inserted + updated + unchanged + rejected)
);

CREATE TABLE change_log (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  at TEXT NOT NULL,
  "user" TEXT NOT NULL,
  actor TEXT,
  table_name TEXT NOT NULL,
  row_key TEXT,
  audit_id bigint,
  field TEXT,          -- NULL for a whole-row insert or delete (old/new hold the row as JSON)
  old jsonb,
  new jsonb,
  reason TEXT,
  hash TEXT NOT NULL
);

CREATE TABLE audit_requests (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('audit_requests'),
  episode_id bigint NOT NULL REFERENCES episodes(id) DEFERRABLE,
  month TEXT NOT NULL CHECK (month ~ '^[0-9]{4}-[0-1][0-9]$'),
  reason TEXT NOT NULL CHECK (trim(reason) <> ''),
  requested_by_id bigint REFERENCES practitioners(id) DEFERRABLE,
  requested_on TEXT NOT NULL CHECK (ehkit_is_date(requested_on)),
  recorded_by TEXT NOT NULL,
  UNIQUE (episode_id, month)
);

CREATE TABLE selection_draws (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('selection_draws'),
  month TEXT NOT NULL CHECK (month ~ '^[0-9]{4}-[0-1][0-9]$'),
  current bigint NOT NULL DEFAULT 1 CHECK (current IN (0, 1)),
  seed bigint NOT NULL,
  drawn_on TEXT NOT NULL CHECK (ehkit_is_date(drawn_on)),
  drawn_at TEXT NOT NULL DEFAULT ehkit_now(),
  drawn_by TEXT NOT NULL,
  redraw_reason TEXT,
  council_quota bigint NOT NULL CHECK (council_quota >= 0),
  partner_quota bigint NOT NULL CHECK (partner_quota >= 0),
  closed_quota bigint NOT NULL CHECK (closed_quota >= 0),
  drift_open_months bigint NOT NULL,
  drift_review_months bigint NOT NULL,
  exclude_audited_months bigint NOT NULL,
  due_days bigint NOT NULL,
  council_pool bigint NOT NULL,
  partner_pool bigint NOT NULL,
  closed_pool bigint NOT NULL,
  drifting bigint NOT NULL,
  excluded_audited bigint NOT NULL,
  drift_quota bigint CHECK (drift_quota >= 0),
  drift_pool bigint CHECK (drift_pool >= 0)
);

CREATE TABLE selections (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('selections'),
  draw_id bigint NOT NULL REFERENCES selection_draws(id) DEFERRABLE,
  episode_id bigint NOT NULL REFERENCES episodes(id) DEFERRABLE,
  reason TEXT NOT NULL
    CHECK (reason IN ('random_council', 'random_partner', 'closed', 'drift', 'request')),
  request_id bigint REFERENCES audit_requests(id) DEFERRABLE,
  auditor_id bigint REFERENCES practitioners(id) DEFERRABLE,
  selected_on TEXT NOT NULL CHECK (ehkit_is_date(selected_on)),
  due_date TEXT NOT NULL CHECK (ehkit_date(due_date) IS NOT NULL AND due_date >= selected_on),
  UNIQUE (draw_id, episode_id),
  CHECK (reason <> 'request' OR request_id IS NOT NULL)
);

CREATE TABLE audit_followups (
  audit_id bigint PRIMARY KEY REFERENCES audits(id) ON DELETE CASCADE DEFERRABLE,
  worker_notified_date TEXT CHECK (ehkit_is_date(worker_notified_date)),
  feedback_sent_date TEXT CHECK (ehkit_is_date(feedback_sent_date))
);

CREATE TABLE discussions (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('discussions'),
  audit_id bigint NOT NULL REFERENCES audits(id) ON DELETE CASCADE DEFERRABLE,
  held_on TEXT NOT NULL CHECK (ehkit_is_date(held_on)),
  learning TEXT NOT NULL CHECK (trim(learning) <> ''),
  notes TEXT
);

CREATE TABLE discussion_attendees (
  discussion_id bigint NOT NULL REFERENCES discussions(id) ON DELETE CASCADE DEFERRABLE,
  practitioner_id bigint NOT NULL REFERENCES practitioners(id) DEFERRABLE,
  role TEXT NOT NULL CHECK (role IN ('worker', 'line_manager', 'auditor', 'other')),
  PRIMARY KEY (discussion_id, practitioner_id)
);

CREATE TABLE one_to_one_meetings (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('one_to_one_meetings'),
  audit_id bigint NOT NULL REFERENCES audits(id) ON DELETE CASCADE DEFERRABLE,
  professional_id bigint NOT NULL REFERENCES practitioners(id) DEFERRABLE,
  held_by_id bigint REFERENCES practitioners(id) DEFERRABLE,
  held_on TEXT NOT NULL CHECK (ehkit_is_date(held_on)),
  notes TEXT NOT NULL CHECK (trim(notes) <> '')
);

CREATE TABLE letters (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('letters'),
  audit_id bigint NOT NULL REFERENCES audits(id) ON DELETE CASCADE DEFERRABLE,
  addressed_to_id bigint REFERENCES practitioners(id) DEFERRABLE,
  drafted_on TEXT NOT NULL CHECK (ehkit_is_date(drafted_on)),
  html_path TEXT NOT NULL,
  text_path TEXT NOT NULL
);

CREATE TABLE service_user_feedback (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('service_user_feedback'),
  episode_id bigint NOT NULL REFERENCES episodes(id) DEFERRABLE,
  given_on TEXT NOT NULL CHECK (ehkit_is_date(given_on)),
  respondent TEXT NOT NULL CHECK (respondent IN ('child_young_person', 'parent_carer')),
  stage TEXT NOT NULL CHECK (stage IN ('end_of_assessment', 'taf_meeting', 'closure')),
  ratings TEXT NOT NULL DEFAULT '{}' CHECK (ehkit_json_valid(ratings)),
  comments TEXT,
  concern_raised bigint NOT NULL DEFAULT 0 CHECK (concern_raised IN (0, 1)),
  concern_theme TEXT,
  concern_detail TEXT,
  import_id bigint REFERENCES imports(id) DEFERRABLE,
  UNIQUE (episode_id, given_on, respondent, stage),
  CHECK ((concern_raised = 1) = (concern_theme IS NOT NULL AND trim(concern_theme) <> ''))
);

CREATE TABLE self_assessments (
  id bigint PRIMARY KEY DEFAULT ehkit_next_id('self_assessments'),
  episode_id bigint NOT NULL REFERENCES episodes(id) DEFERRABLE,
  practitioner_id bigint NOT NULL REFERENCES practitioners(id) DEFERRABLE,
  completed_on TEXT NOT NULL CHECK (ehkit_is_date(completed_on)),
  template TEXT NOT NULL,
  notes TEXT,
  UNIQUE (episode_id, practitioner_id, completed_on)
);

CREATE TABLE self_assessment_items (
  self_assessment_id bigint NOT NULL REFERENCES self_assessments(id) ON DELETE CASCADE DEFERRABLE,
  item TEXT NOT NULL,
  met bigint NOT NULL CHECK (met IN (0, 1)),
  PRIMARY KEY (self_assessment_id, item)
);

CREATE TABLE users (
  login TEXT PRIMARY KEY CHECK (trim(login) <> '' AND login = trim(login)),
  practitioner_id bigint REFERENCES practitioners(id) DEFERRABLE,
  roles TEXT NOT NULL CHECK (trim(roles) <> ''),
  active bigint NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  changed_at TEXT NOT NULL
);

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

-- The views (final_overall, final_section_grades, final_grades, counted_audits) are not
-- here: ehkit/postgres.py creates them from SQLite's migrations, each view's newest
-- definition, so each rule (the grade that counts, the audits that count) is written once.

-- The change log: the same hash chain as SQLite's triggers (ehkit.db.chain_hash), computed
-- here. The JSON array hashed is built as Python's json.dumps builds it (compact, non-ASCII
-- as is); a bulk insert's rows enter as the sha256 of their JSON. The person comes from the
-- transaction's settings ehkit.user/actor/reason (ehkit.postgres.transaction), else the login.
CREATE FUNCTION ehkit_hash(prev text, at text, u text, a text, t text, k text, au bigint,
                           f text, o jsonb, n jsonb, r text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  js text := coalesce(n::text, 'null');
  data bytea;
  key text := current_setting('ehkit.log_key', true);
BEGIN
  IF k IS NULL AND f IS NULL AND n IS NOT NULL THEN
    js := to_json('sha256:' || encode(sha256(convert_to(n #>> '{}', 'UTF8')), 'hex'))::text;
  END IF;
  data := convert_to('[' || concat_ws(',', coalesce(to_json(prev)::text, 'null'),
    coalesce(to_json(at)::text, 'null'), coalesce(to_json(u)::text, 'null'),
    coalesce(to_json(a)::text, 'null'), coalesce(to_json(t)::text, 'null'),
    coalesce(to_json(k)::text, 'null'), coalesce(to_json(au)::text, 'null'),
    coalesce(to_json(f)::text, 'null'), coalesce(o::text, 'null'), js,
    coalesce(to_json(r)::text, 'null')) || ']', 'UTF8');
  IF coalesce(key, '') <> '' THEN
    RETURN 'hmac:' || encode(hmac(data, decode(key, 'hex'), 'sha256'), 'hex');
  END IF;
  RETURN encode(sha256(data), 'hex');
END $$;

-- Append one change-log row, chained to the last. The advisory lock (ehkit's number) makes
-- writers take turns, as SQLite's BEGIN IMMEDIATE does, so two rows never share a parent. Its id:
-- from the log's counter since migration 0133, which replaces this function.
CREATE FUNCTION ehkit_log_row(t text, k text, au bigint, f text, o jsonb, n jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  at text := to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
  u text := coalesce(nullif(current_setting('ehkit.user', true), ''), session_user);
  a text := nullif(current_setting('ehkit.actor', true), '');
  r text := nullif(current_setting('ehkit.reason', true), '');
  prev text;
BEGIN
  PERFORM pg_advisory_xact_lock(4523786);
  SELECT hash INTO prev FROM change_log ORDER BY id DESC LIMIT 1;
  INSERT INTO change_log (at, "user", actor, table_name, row_key, audit_id, field, old, new,
                          reason, hash)
  VALUES (at, u, a, t, k, au, f, o, n, r, ehkit_hash(prev, at, u, a, t, k, au, f, o, n, r));
END $$;

-- A row as SQLite's json_object writes it: the logged columns, in order, compact.
CREATE FUNCTION ehkit_row_json(r jsonb, cols text[]) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT '{' || string_agg(to_json(c)::text || ':' || coalesce((r -> c)::text, 'null'), ','
                           ORDER BY i) || '}'
  FROM unnest(cols) WITH ORDINALITY AS x(c, i) $$;

-- A row as SQLite's json_array writes it: the values of the columns, in order (a bulk
-- insert's rows, logged together: ehkit.db.logged_together).
CREATE FUNCTION ehkit_row_array(r jsonb, cols text[]) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT '[' || string_agg(coalesce((r -> c)::text, 'null'), ',' ORDER BY i) || ']'
  FROM unnest(cols) WITH ORDINALITY AS x(c, i) $$;

-- The trigger on every logged table: TG_ARGV holds the column naming the row's audit ('' if
-- none), the primary key's columns (comma-separated), then the logged columns in order.
CREATE FUNCTION ehkit_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  audit_col text := TG_ARGV[0];
  pk text[] := string_to_array(TG_ARGV[1], ',');
  cols text[] := TG_ARGV[2:TG_NARGS - 1];
  old_row jsonb;
  new_row jsonb;
  the_row jsonb;
  k text;
  c text;
BEGIN
  IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
  IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
  the_row := coalesce(new_row, old_row);
  SELECT string_agg(the_row ->> p, '/' ORDER BY i) INTO k
    FROM unnest(pk) WITH ORDINALITY AS x(p, i);
  IF TG_OP = 'INSERT' THEN
    PERFORM ehkit_log_row(TG_TABLE_NAME, k, (the_row ->> audit_col)::bigint, NULL, NULL,
                          to_jsonb(ehkit_row_json(new_row, cols)));
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM ehkit_log_row(TG_TABLE_NAME, k, (the_row ->> audit_col)::bigint, NULL,
                          to_jsonb(ehkit_row_json(old_row, cols)), NULL);
  ELSE
    FOREACH c IN ARRAY cols LOOP
      IF old_row -> c IS DISTINCT FROM new_row -> c THEN
        PERFORM ehkit_log_row(TG_TABLE_NAME, k, (the_row ->> audit_col)::bigint, c,
                              nullif(old_row -> c, 'null'), nullif(new_row -> c, 'null'));
      END IF;
    END LOOP;
  END IF;
  RETURN NULL;
END $$;

-- An integrity error, as SQLite's RAISE(ABORT) in a trigger is (ehkit.db.integrity_errors).
CREATE FUNCTION ehkit_log_is_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'the change log cannot be changed' USING ERRCODE = '23000';
  END IF;
  RAISE EXCEPTION 'the change log cannot be deleted from' USING ERRCODE = '23000';
END $$;

CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
FOR EACH ROW EXECUTE FUNCTION ehkit_log_is_kept();

CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
FOR EACH ROW EXECUTE FUNCTION ehkit_log_is_kept();

-- TRUNCATE skips row triggers: refuse it too (SQLite has no TRUNCATE).
CREATE TRIGGER change_log_no_truncate BEFORE TRUNCATE ON change_log
FOR EACH STATEMENT EXECUTE FUNCTION ehkit_log_is_kept();
