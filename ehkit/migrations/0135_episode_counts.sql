-- Episodes counted by month as they change, which the reports' figures of episodes read.
-- A report's figures of episodes begun, ended and open, and its medians of days, add up
-- monthly counts instead of counting every episode of every quarter it shows (issues 18 and
-- 19; ehkit/episode_counts.py). The triggers that keep them, and their first count, are made
-- after the migrations, with the change log's: what an episode counts for is said once, in
-- that module.
CREATE TABLE episode_counts (
  counted TEXT NOT NULL CHECK (counted IN ('began', 'ended', 'open_change')),
  month TEXT NOT NULL,            -- YYYY-MM
  how TEXT NOT NULL,              -- began_as, ended_as ('' where none); '' for open_change
  episodes INTEGER NOT NULL,
  PRIMARY KEY (counted, month, how)
) WITHOUT ROWID;

CREATE TABLE episode_days (
  counted TEXT NOT NULL CHECK (counted IN ('length', 'to_first_review')),
  month TEXT NOT NULL,            -- YYYY-MM: of the end, or of the first review
  days INTEGER NOT NULL,
  episodes INTEGER NOT NULL,
  PRIMARY KEY (counted, month, days)
) WITHOUT ROWID;
