-- The auditor's app looks audits up by auditor (the drafts list) and moderations by audit.
CREATE INDEX IF NOT EXISTS audits_auditor1_status ON audits(auditor1_id, status);
CREATE INDEX IF NOT EXISTS moderations_audit ON moderations(audit_id);
