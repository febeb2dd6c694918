-- Performance (issue 8): figures for a period read only the period's rows. Feedback
-- discussions by the day they were held (who took part, learning themes) and moderations
-- by the day they were made (agreement between auditors and moderators).
CREATE INDEX discussions_held ON discussions(held_on);
CREATE INDEX moderations_on ON moderations(moderated_on);
