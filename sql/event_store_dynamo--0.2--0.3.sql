/* event_store_dynamo--0.2--0.3.sql: background workers that keep projections current (src/worker.c) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION event_store_dynamo UPDATE TO '0.3'" to load this file. \quit

-- The running projections: one row per projection that workers keep
-- current.  Written only by start_projection and stop_projection (which
-- check ownership of the projection); dropping a projection removes its
-- row, and the row's delete trigger stops its workers at commit.
CREATE TABLE projection_runs (
  projection text PRIMARY KEY REFERENCES projection (name) ON DELETE CASCADE,
  poll interval NOT NULL DEFAULT interval '1 second',
  started_at timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('projection_runs', '');
-- each role sees the running projections it may see in the catalog
ALTER TABLE projection_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON projection_runs
  USING (EXISTS (SELECT 1 FROM event_store_dynamo.projection p WHERE p.name = projection));
GRANT SELECT ON projection_runs TO PUBLIC;

CREATE FUNCTION projection_runs_deleted()
RETURNS trigger
AS 'MODULE_PATHNAME', 'esd_projection_runs_deleted'
LANGUAGE C;

CREATE TRIGGER projection_runs_deleted AFTER DELETE ON projection_runs
  FOR EACH ROW EXECUTE FUNCTION projection_runs_deleted();

CREATE FUNCTION start_projection(name text, poll interval DEFAULT interval '1 second')
RETURNS void
AS 'MODULE_PATHNAME', 'esd_start_projection'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION start_projection(text, interval) IS
  'run the projection in background workers (one per partition), connected as its owner, catching up every poll interval (owner only)';

CREATE FUNCTION stop_projection(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'esd_stop_projection'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION stop_projection(text) IS
  'stop the projection''s background workers when the transaction commits; returns whether it was running (owner only)';

CREATE FUNCTION projection_worker_status(
  OUT database name, OUT projection text, OUT partition integer, OUT partitions integer,
  OUT pid integer, OUT state text, OUT restarts integer, OUT errors integer,
  OUT last_error text, OUT last_catch_up timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'esd_projection_workers'
LANGUAGE C STRICT VOLATILE;

-- Progress: each commit that deals with events sends NOTIFY
-- event_store_dynamo_projection (the projection, its position, events
-- applied) and wakes the sessions in wait_for_projection.
CREATE FUNCTION projection_progress()
RETURNS trigger
AS 'MODULE_PATHNAME', 'esd_projection_progress'
LANGUAGE C;

CREATE TRIGGER projection_progress AFTER UPDATE ON projection_run
  FOR EACH ROW
  WHEN (OLD.position_id IS DISTINCT FROM NEW.position_id
        OR OLD.events_applied <> NEW.events_applied OR OLD.events_filtered <> NEW.events_filtered
        OR OLD.skipped <> NEW.skipped OR OLD.dead_lettered <> NEW.dead_lettered)
  EXECUTE FUNCTION projection_progress();

-- The same contract as before; it sleeps until a commit moves a projection
-- instead of polling (when the library is preloaded).
CREATE OR REPLACE FUNCTION wait_for_projection(name text, event_id text, timeout interval DEFAULT '5 seconds')
RETURNS boolean
AS 'MODULE_PATHNAME', 'esd_wait_for_projection'
LANGUAGE C VOLATILE;

-- The workers of this database's running projections, as the launcher sees
-- them (empty when the library is not in shared_preload_libraries).
CREATE VIEW projection_workers AS
  SELECT projection, partition, partitions, pid, state, restarts, errors, last_error, last_catch_up
    FROM projection_worker_status()
   WHERE database = current_database();
GRANT SELECT ON projection_workers TO PUBLIC;

-- drop_projection as in 0.2, but it first takes the row locks of the
-- projection's runs, that is, it waits for the batch under way: a catch-up
-- (a worker's) updating its run needs the projection's row, which the drop
-- locks, so taking them the other way round deadlocked.  The workers stop
-- when the drop commits (the delete trigger of projection_runs).
CREATE OR REPLACE FUNCTION drop_projection(name text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  o regrole := event_store_dynamo._check_owner(name);
  sch text;
BEGIN
  PERFORM event_store_dynamo._as_owner(o);
  PERFORM 1 FROM event_store_dynamo.projection_run r WHERE r.projection = drop_projection.name FOR UPDATE;
  SELECT rebuild_schema INTO sch FROM event_store_dynamo.projection p WHERE p.name = drop_projection.name;
  IF sch IS NOT NULL THEN
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', sch);
  END IF;
  DELETE FROM event_store_dynamo.projection p WHERE p.name = drop_projection.name;
END
$$;
