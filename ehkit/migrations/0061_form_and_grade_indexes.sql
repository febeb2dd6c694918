-- Performance (issue 8, measured in bench/ on a 1,000,000-episode store).
--
-- final_grades reads each period audit's graded answers and, for each, its latest
-- moderation: a partial covering index holds only the graded answers (8 of ~46 per audit),
-- and the moderation index returns the latest one without sorting (for moderated audits).
CREATE INDEX answers_graded ON answers(audit_id, key, grade) WHERE grade IS NOT NULL;
CREATE INDEX moderations_latest ON moderations(audit_id, key, moderated_on, id, moderated_grade);

-- The audit form's list of audits when it opens, most recently changed first: walked in
-- order, stopping at the limit, instead of sorting every audit.
CREATE INDEX audits_updated ON audits(updated_at, id);
