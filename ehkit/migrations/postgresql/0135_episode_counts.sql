-- SQLite's 0135_episode_counts.sql in PostgreSQL's words (its triggers, one function run
-- once a statement over its transition tables, are made after the migrations).
CREATE TABLE episode_counts (
  counted TEXT NOT NULL CHECK (counted IN ('began', 'ended', 'open_change')),
  month TEXT NOT NULL,
  how TEXT NOT NULL,
  episodes bigint NOT NULL,
  PRIMARY KEY (counted, month, how)
);

CREATE TABLE episode_days (
  counted TEXT NOT NULL CHECK (counted IN ('length', 'to_first_review')),
  month TEXT NOT NULL,
  days bigint NOT NULL,
  episodes bigint NOT NULL,
  PRIMARY KEY (counted, month, days)
);
