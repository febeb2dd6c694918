-- Practitioner self-assessment checklists (framework: "Self-Assessment"), one or more per
-- episode; items are the keys of ehkit/templates/self_assessment.toml.
CREATE TABLE self_assessments (
  id INTEGER PRIMARY KEY,
  episode_id INTEGER NOT NULL REFERENCES episodes(id),
  practitioner_id INTEGER NOT NULL REFERENCES practitioners(id),
  completed_on TEXT NOT NULL CHECK (completed_on IS date(completed_on, '+0 days')),
  template TEXT NOT NULL,
  notes TEXT,
  UNIQUE (episode_id, practitioner_id, completed_on)
);
CREATE INDEX self_assessments_episode ON self_assessments(episode_id);
CREATE INDEX self_assessments_completed ON self_assessments(completed_on);

CREATE TABLE self_assessment_items (
  self_assessment_id INTEGER NOT NULL REFERENCES self_assessments(id) ON DELETE CASCADE,
  item TEXT NOT NULL,
  met INTEGER NOT NULL CHECK (met IN (0, 1)),
  PRIMARY KEY (self_assessment_id, item)
);
