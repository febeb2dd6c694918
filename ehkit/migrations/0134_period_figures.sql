-- A period's figures read that period's rows, not the whole store's (issue 18).
-- The grade that counts (0082's views, the same rule) gets its audit's date as a column: a
-- figure of a period's audits then reads the view's own audit row by that date too. The
-- views read the audit again (its status says whether a moderation counts); joined by the
-- audit's id alone, PostgreSQL read every audit to join them (a hash of all 125,000 among a
-- million episodes, once per figure), where the date range reads the period's only: the
-- quarterly report's five quarters of % acceptable at half the CPU (bench/RESULTS.md).
-- SQLite reads the audit by its rowid either way. PostgreSQL's twin drops the three views;
-- these statements then make them there too (ehkit/postgres.py), in the same words. It
-- also makes PostgreSQL two narrow indexes of its own (the twin says why).
DROP VIEW final_grades;
DROP VIEW final_overall;
DROP VIEW final_section_grades;

CREATE VIEW final_overall AS
SELECT a.id AS audit_id,
       coalesce(CASE WHEN a.status = 'moderated' THEN
                (SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = a.id AND m.key = 'overall'
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1) END,
                a.overall_grade) AS grade,
       a.audit_date
FROM audits a;

CREATE VIEW final_section_grades AS
SELECT an.audit_id, an.key,
       coalesce(CASE WHEN a.status = 'moderated' THEN
                (SELECT m.moderated_grade FROM moderations m
                 WHERE m.audit_id = an.audit_id AND m.key = an.key
                 ORDER BY m.moderated_on DESC, m.id DESC LIMIT 1) END,
                an.grade) AS grade,
       a.audit_date
FROM answers an JOIN audits a ON a.id = an.audit_id
WHERE an.grade IS NOT NULL;

CREATE VIEW final_grades AS
SELECT audit_id, 'overall' AS key, grade FROM final_overall
UNION ALL
SELECT audit_id, key, grade FROM final_section_grades;
