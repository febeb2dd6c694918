-- Performance (issue 8): the quarterly report at a region's size.
--
-- The grade that counts (0070's rule: the latest moderation of the key while the audit
-- stands moderated, else the auditor's grade), as two views that SQLite flattens into a
-- query: final_overall, one row per audit, and final_section_grades, one row per graded
-- answer, found by its key through the answers' primary key. 0070's single view had to
-- read every graded answer of an audit to find one key (or the overall grade). final_grades
-- stays, as the two together, for reading one audit's grades.
DROP VIEW final_grades;

CREATE VIEW final_overall AS
SELECT a.id AS audit_id,
       coalesce(CASE WHEN a.status = 'moderated' THEN
                (SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = a.id AND m.key = 'overall'
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1) END,
                a.overall_grade) AS grade
FROM audits a;

CREATE VIEW final_section_grades AS
SELECT an.audit_id, an.key,
       coalesce(CASE WHEN a.status = 'moderated' THEN
                (SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = an.audit_id AND m.key = an.key
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1) END,
                an.grade) AS grade
FROM answers an JOIN audits a ON a.id = an.audit_id
WHERE an.grade IS NOT NULL;

CREATE VIEW final_grades AS
SELECT audit_id, 'overall' AS key, grade FROM final_overall
UNION ALL
SELECT audit_id, key, grade FROM final_section_grades;

-- Days to the first review, for first reviews held in a period.
CREATE INDEX episodes_first_review ON episodes(first_review_date, start_date);

-- Concerns raised in service-user feedback by theme (about one form in eight raises one).
CREATE INDEX service_user_feedback_concerns ON service_user_feedback(given_on, concern_theme)
  WHERE concern_raised = 1;
