-- The draw reads everything it needs about the episodes open during a month (dates, agency,
-- reviews, EHM number for the "audited lately" exclusion) from this one covering index.
DROP INDEX IF EXISTS episodes_open_pool;
CREATE INDEX episodes_open_pool ON episodes(end_date, start_date, lead_agency_id,
                                            last_review_date, first_review_date, ehm_number);
