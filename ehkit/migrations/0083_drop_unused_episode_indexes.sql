-- Performance (issue 8): no query looks episodes up by lead agency or lead professional
-- (reports reach the agency through the episode), so these two indexes only cost every
-- episode written (a tenth of building a million-episode store). Without them, removing
-- a practitioner or an agency - rare - reads the episodes once to check nothing points at it.
DROP INDEX episodes_lead_agency;
DROP INDEX episodes_lead_professional;
