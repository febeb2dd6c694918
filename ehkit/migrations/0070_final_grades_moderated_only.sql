-- A moderation counts only while the audit stands moderated: an audit reopened after
-- moderation and submitted again is graded by its auditor until it is moderated again.
-- Earlier moderations stay in the table as history (and in the agreement figures).
-- Same flattened shape as 0060 (one SELECT, so SQLite reads only a period's audits).
DROP VIEW final_grades;
CREATE VIEW final_grades AS
SELECT a.id AS audit_id, coalesce(an.key, 'overall') AS key,
       coalesce(CASE WHEN a.status = 'moderated' THEN
                (SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = a.id AND m.key = coalesce(an.key, 'overall')
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1) END,
                CASE WHEN an.key IS NULL THEN a.overall_grade ELSE an.grade END) AS grade
FROM audits a
JOIN (SELECT 'overall' AS source UNION ALL SELECT 'answer') AS s
LEFT JOIN answers an ON s.source = 'answer' AND an.audit_id = a.id AND an.grade IS NOT NULL
WHERE s.source = 'overall' OR an.key IS NOT NULL;
