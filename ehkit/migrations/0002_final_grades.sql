-- The grade that counts in figures: the moderator's where an audit was moderated (the latest
-- moderation of that key), else the auditor's. Both stay stored; this view only chooses.
CREATE VIEW final_grades AS
SELECT a.id AS audit_id, 'overall' AS key,
       coalesce((SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = a.id AND m.key = 'overall'
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1), a.overall_grade) AS grade
FROM audits a
UNION ALL
SELECT an.audit_id, an.key,
       coalesce((SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = an.audit_id AND m.key = an.key
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1), an.grade) AS grade
FROM answers an
WHERE an.grade IS NOT NULL;
