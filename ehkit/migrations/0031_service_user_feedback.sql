-- Service-user feedback (framework: "Service User Feedback"): from the child or young person
-- or the parent or carer, at the end of the assessment, at a TAF meeting or at closure.
-- Ratings are a JSON object {question key: 1..5}; the questions are a setting.
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
CREATE INDEX service_user_feedback_given ON service_user_feedback(given_on);
