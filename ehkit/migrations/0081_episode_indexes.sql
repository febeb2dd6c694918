-- Performance (issue 8): one covering index by end date instead of three, and none of the
-- single-column indexes the covering ones begin with. The same queries use the same
-- leading columns; writes and the demo's index builds have four fewer to maintain.
DROP INDEX episodes_start;          -- episodes_by_start begins with start_date
DROP INDEX episodes_end;            -- episodes_by_end begins with end_date
DROP INDEX episodes_open_pool;      -- merged into episodes_by_end
DROP INDEX episodes_by_end;
CREATE INDEX episodes_by_end ON episodes(end_date, start_date, lead_agency_id, referral_reason,
                                         began_as, ended_as, last_review_date, first_review_date);
