-- Drifting cases listed a month are capped (setting drift_cases, 0: every one), the longest
-- without a review first: a region has thousands drifting at once, more than can be audited.
-- Each draw keeps its cap and how many cases were drifting and not yet listed for that
-- spell, so the backlog shows. Draws made before this have NULL in both (every one listed).
ALTER TABLE selection_draws ADD COLUMN drift_quota INTEGER CHECK (drift_quota >= 0);
ALTER TABLE selection_draws ADD COLUMN drift_pool INTEGER CHECK (drift_pool >= 0);
