-- The change log's ids from a counter that rolls back with its save, as SQLite's
-- sqlite_sequence does (issue 18). An identity sequence does not roll back: a save killed or
-- rolled back before its commit left a gap that `ehkit check` read as log rows removed, and
-- a backup's snapshot could not see the ids of a save under way. `ehkit check` compares the
-- counter with the last id to find rows removed from the end of the log.
--
-- Cheap however big the save: the counter row is written twice a save (marked moving at its
-- first log row, moved to its last id as it commits), and not even read at its later rows.
-- A row updated again and again in one transaction keeps every version and each update
-- walks them all, and a deferred trigger a log row queued an event a row: the first fix
-- (reverted) did both, and a month's draw on a million episodes sat minutes in COMMIT.
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

-- The id after the log's largest (``last``, read under the writers' lock), as AUTOINCREMENT
-- gives one: one past the larger of the counter and ``last``. A save's first id marks the
-- counter moving (made again if removed), so its commit moves it: one event a save. Its
-- later ids follow its first, past the counter already: the counter is not read again (the
-- mark is a setting of the transaction's, undone with it or with a part rolled back).
CREATE FUNCTION ehkit_log_id_after(last bigint) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  counted bigint;
BEGIN
  IF current_setting('ehkit.log_moving', true) = 'on' THEN
    RETURN coalesce(last, 0) + 1;
  END IF;
  SELECT seq INTO counted FROM change_log_counter;
  INSERT INTO change_log_counter AS c VALUES (TRUE, coalesce(counted, 0), TRUE)
  ON CONFLICT (one) DO UPDATE SET moving = TRUE;
  PERFORM set_config('ehkit.log_moving', 'on', true);
  RETURN greatest(counted, last, 0) + 1;
END $$;

-- A log row inserted with no id (a bulk insert's, ehkit.db.logged_together; one added by
-- hand) gets the next.
CREATE FUNCTION ehkit_log_next_id() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(4523786);
  RETURN ehkit_log_id_after((SELECT max(id) FROM change_log));
END $$;

-- The trigger's row (baseline.sql's, its id now given here): the last row read once, for
-- its hash and its id, so a log row costs what it did with the identity sequence.
CREATE OR REPLACE FUNCTION ehkit_log_row(t text, k text, au bigint, f text, o jsonb, n jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  at text := to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
  u text := coalesce(nullif(current_setting('ehkit.user', true), ''), session_user);
  a text := nullif(current_setting('ehkit.actor', true), '');
  r text := nullif(current_setting('ehkit.reason', true), '');
  last bigint;
  prev text;
BEGIN
  PERFORM pg_advisory_xact_lock(4523786);
  SELECT id, hash INTO last, prev FROM change_log ORDER BY id DESC LIMIT 1;
  INSERT INTO change_log (id, at, "user", actor, table_name, row_key, audit_id, field, old,
                          new, reason, hash)
  VALUES (ehkit_log_id_after(last), at, u, a, t, k, au, f, o, n, r,
          ehkit_hash(prev, at, u, a, t, k, au, f, o, n, r));
END $$;

-- As the save commits: the counter to its last id (its own update is not moving: no event).
CREATE FUNCTION ehkit_log_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE change_log_counter
  SET seq = greatest(seq, (SELECT coalesce(max(id), 0) FROM change_log)), moving = FALSE;
  PERFORM set_config('ehkit.log_moving', '', true);  -- fired early (SET CONSTRAINTS): mark again
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER change_log_counted AFTER INSERT OR UPDATE ON change_log_counter
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.moving)
EXECUTE FUNCTION ehkit_log_counted();

ALTER TABLE change_log ALTER COLUMN id DROP IDENTITY;
ALTER TABLE change_log ALTER COLUMN id SET DEFAULT ehkit_log_next_id();
