-- The change log's ids from a counter that rolls back with its save, as SQLite's
-- sqlite_sequence does (issue 18). An identity sequence does not roll back: a save killed or
-- rolled back before its commit left a gap that `ehkit check` read as log rows removed, and
-- a backup's snapshot could not see the ids of a save under way. One row, updated in the
-- save's transaction as it commits (writers take turns already: ehkit.postgres); `ehkit
-- check` compares it with the last id to find rows removed from the end of the log.
CREATE TABLE change_log_counter (
  one boolean PRIMARY KEY DEFAULT TRUE CHECK (one),
  seq bigint NOT NULL
);

-- Where the identity sequence stood, so rows already removed from the end are still found.
DO $$
DECLARE
  seq text := pg_get_serial_sequence('change_log', 'id');
  given bigint := 0;
BEGIN
  IF seq IS NOT NULL THEN
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s', seq)
      INTO given;
  END IF;
  INSERT INTO change_log_counter VALUES (TRUE, given);
END $$;

-- A new id as AUTOINCREMENT gives one: one past the larger of the counter and the largest id
-- (a row inserted with its id given moves it on too).
CREATE FUNCTION ehkit_log_next_id() RETURNS bigint LANGUAGE sql VOLATILE AS $$
  SELECT greatest(coalesce((SELECT seq FROM change_log_counter), 0),
                  (SELECT coalesce(max(id), 0) FROM change_log)) + 1 $$;

-- The counter moved on once a save, as it commits, to its last id (made again if removed).
-- Not at each row: a row updated again and again in one transaction keeps every version,
-- and each update walks them all (a save of 20,000 log rows took twice as long).
CREATE FUNCTION ehkit_log_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = (SELECT max(id) FROM change_log) THEN
    INSERT INTO change_log_counter AS c VALUES (TRUE, NEW.id)
    ON CONFLICT (one) DO UPDATE SET seq = greatest(c.seq, NEW.id);
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER change_log_counted AFTER INSERT ON change_log
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ehkit_log_counted();

ALTER TABLE change_log ALTER COLUMN id DROP IDENTITY;
ALTER TABLE change_log ALTER COLUMN id SET DEFAULT ehkit_log_next_id();
