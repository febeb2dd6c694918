-- The monthly audit selection (issue 4): each draw with its seed, quotas and pool sizes, the
-- cases it chose with their reason, auditor and due date, and lead professionals' requests.

-- Requests come first: a selection row may point at the request that put the case there.
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
CREATE INDEX audit_requests_month ON audit_requests(month);

-- A month may be drawn again only with a reason; the earlier draw stays, no longer current.
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
);
CREATE UNIQUE INDEX selection_draws_one_current ON selection_draws(month) WHERE current = 1;

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
CREATE INDEX selections_episode ON selections(episode_id);
CREATE INDEX selections_auditor ON selections(auditor_id);

-- The draw's pools at a million episodes: open-during-the-month and drift scans read only this
-- covering index (episodes open at some point after a date, with what the draw needs).
CREATE INDEX episodes_open_pool ON episodes(end_date, start_date, lead_agency_id,
                                            last_review_date, first_review_date);
-- Exclusion of cases audited in the last 12 months: audits by date with their episode.
CREATE INDEX audits_date_episode ON audits(audit_date, episode_id);
