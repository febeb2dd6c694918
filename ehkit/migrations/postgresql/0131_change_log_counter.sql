-- The change log's ids from a counter that rolls back with its save, as SQLite's
-- sqlite_sequence does (issue 18). An identity sequence does not roll back: a save killed or
-- rolled back before its commit left a gap that `ehkit check` read as log rows removed, and
-- a backup's snapshot could not see the ids of a save under way. `ehkit check` compares the
-- counter with the last id to find rows removed from the end of the log.
--
-- Cheap however big the save: the counter row is written twice a save (marked moving at its
-- first log row, moved to its last id as it commits), never once a row. A row updated again
-- and again in one transaction keeps every version and each update walks them all, and a
-- deferred trigger a log row queued an event a row: the first fix (reverted) did both, and a
-- month's draw on a million episodes sat minutes in COMMIT.
CREATE TABLE change_log_counter (
  one boolean PRIMARY KEY DEFAULT TRUE CHECK (one),
  seq bigint NOT NULL,            -- the ids given out by saves committed
  moving boolean NOT NULL DEFAULT FALSE  -- a save under way gave ids: moved as it commits
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
  INSERT INTO change_log_counter VALUES (TRUE, given, FALSE);
END $$;

-- A new id as AUTOINCREMENT gives one: one past the larger of the counter and the largest id,
-- under the writers' lock (held already by the save). A save's first id marks the counter
-- moving (made again if removed), so its commit moves it: one event a save, not a row.
CREATE FUNCTION ehkit_log_next_id() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  counted change_log_counter%ROWTYPE;
  last bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(4523786);
  SELECT * INTO counted FROM change_log_counter;
  SELECT id INTO last FROM change_log ORDER BY id DESC LIMIT 1;
  IF counted.moving IS NOT TRUE THEN
    INSERT INTO change_log_counter AS c VALUES (TRUE, coalesce(counted.seq, 0), TRUE)
    ON CONFLICT (one) DO UPDATE SET moving = TRUE;
  END IF;
  RETURN greatest(counted.seq, last, 0) + 1;
END $$;

-- As the save commits: the counter to its last id (its own update is not moving: no event).
CREATE FUNCTION ehkit_log_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE change_log_counter
  SET seq = greatest(seq, (SELECT coalesce(max(id), 0) FROM change_log)), moving = FALSE;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER change_log_counted AFTER INSERT OR UPDATE ON change_log_counter
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.moving)
EXECUTE FUNCTION ehkit_log_counted();

ALTER TABLE change_log ALTER COLUMN id DROP IDENTITY;
ALTER TABLE change_log ALTER COLUMN id SET DEFAULT ehkit_log_next_id();
