-- Performance (issue 8, measured in bench/): the report's queries at a region's size.
--
-- final_grades was a UNION ALL view. SQLite cannot push a join's condition into a compound
-- view, so every query joining audits of a period to it first built the whole view: every
-- audit and every graded answer in the store. This equivalent view is one SELECT (the two
-- sources, overall grade and graded answers, come from a two-row constant), so SQLite
-- flattens it into the query and reads only the period's audits and their answers. The rows
-- are the same: one 'overall' row per audit, one row per answer with a grade, each taking
-- the latest moderation of its key.
DROP VIEW final_grades;
CREATE VIEW final_grades AS
SELECT a.id AS audit_id, coalesce(an.key, 'overall') AS key,
       coalesce((SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = a.id AND m.key = coalesce(an.key, 'overall')
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1),
                CASE WHEN an.key IS NULL THEN a.overall_grade ELSE an.grade END) AS grade
FROM audits a
JOIN (SELECT 'overall' AS source UNION ALL SELECT 'answer') AS s
LEFT JOIN answers an ON s.source = 'answer' AND an.audit_id = a.id AND an.grade IS NOT NULL
WHERE s.source = 'overall' OR an.key IS NOT NULL;

-- Audits of a period that count (submitted or moderated): one range per status.
CREATE INDEX audits_status_date ON audits(status, audit_date);

-- Episodes open in, begun in or closed in a period, counted by sector, referral reason and
-- how they began or ended: covering indexes, so the counts never read the table itself.
-- By start: "began on or before the end"; by end: "ended in the period / not ended by then".
CREATE INDEX episodes_by_start ON episodes(start_date, end_date, lead_agency_id,
                                           referral_reason, began_as, ended_as);
CREATE INDEX episodes_by_end ON episodes(end_date, start_date, lead_agency_id,
                                         referral_reason, began_as, ended_as);
