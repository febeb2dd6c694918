-- The audits that count (issue 14): submitted or moderated, never a draft. Every figure,
-- check and follow-up reads them from this view, so the rule is written once. It is one
-- SELECT with no join, so SQLite flattens it into each query and the period's range is
-- still read from audits_status_date (measured on the demo store: same plans, same times).
CREATE VIEW counted_audits AS
SELECT * FROM audits WHERE status IN ('submitted', 'moderated');
