-- PostgreSQL's indexes hold only their own columns, SQLite's the row's id too (the rowid):
-- the index of episodes by end date holding the id (INCLUDE) lets the month's draw
-- (ehkit.sampling) read the month's episodes from the index alone on both back ends, with
-- the same SQL (among a million episodes, the open ones in 23 ms against 154 ms reading the
-- table's pages). Run twice it refuses (ehkit check tries an unrecorded migration to learn
-- whether the store holds it already).
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE c.relname = 'episodes_by_end' AND i.indnatts > i.indnkeyatts) THEN
    RAISE EXCEPTION 'the index episodes_by_end holds the ids already';
  END IF;
END $$;
DROP INDEX episodes_by_end;
CREATE INDEX episodes_by_end ON episodes(end_date, start_date, lead_agency_id, referral_reason,
                                         began_as, ended_as, last_review_date, first_review_date)
  INCLUDE (id);
