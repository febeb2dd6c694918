-- The grade that counts with its audit's date beside it (../0134_grades_by_audit_date.sql
-- says why). The views are dropped here and made again from SQLite's migration, word for
-- word (ehkit/postgres.py: apply_migrations), so the rule is written once.
DROP VIEW final_grades;
DROP VIEW final_overall;
DROP VIEW final_section_grades;
