-- A period's figures read that period's rows (../0134_period_figures.sql). The grade
-- views are dropped here and made again from SQLite's migration, word for word
-- (ehkit/postgres.py: apply_migrations), so the rule is written once.
DROP VIEW final_grades;
DROP VIEW final_overall;
DROP VIEW final_section_grades;

-- Episodes by end date and how they ended, and by start date and how they began, for the
-- counts of a quarter's closed (with outcomes achieved, stepped up) and begun (stepped
-- down): five quarters a report. The indexes by end and by start date hold the same, but
-- eight and six columns wide, and PostgreSQL takes every column of an index's entry apart
-- to read one: among a million episodes these counts took three to four times the CPU
-- (bench/RESULTS.md). SQLite is left as it was.
CREATE INDEX episodes_closed_as ON episodes(end_date, ended_as);
CREATE INDEX episodes_began_as ON episodes(start_date, began_as);
