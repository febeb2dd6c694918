-- The episodes still open (no end date), by start date, with the two columns the report's
-- grids group them by: the count of episodes open at a quarter's end (five quarters a
-- report) reads this index alone. The same entries in the index of episodes by end date
-- are eight columns and an id wide; here repeated start dates are stored once, so among a
-- million episodes the report's open counts read a tenth of the pages (bench/RESULTS.md).
-- Run twice it refuses (the index exists), as ehkit check expects of a migration.
CREATE INDEX episodes_open ON episodes(start_date, lead_agency_id, referral_reason)
  WHERE end_date IS NULL;
