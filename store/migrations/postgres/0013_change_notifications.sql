-- Issue 7: every committed change other processes cache is announced on the channel
-- `mandate_changes` (NOTIFY is delivered at COMMIT, and only then). Payloads:
--   revocation      a certificate was revoked: drop cached OCSP answers, rebuild CRLs
--   ocsp            pre-signed OCSP responses changed: stand-alone responders read the feed
--   ca              CA certificates changed (rotation): load the new issuers
--   agent:<id>      an agent's status, mandate, certificates or baseline changed
-- Triggers, not application code, send them, so the CLI and every node announce alike. Each
-- listener still polls now and then: a notification missed while its connection was down is
-- made up for by that reconciliation.

CREATE FUNCTION mandate_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mandate_changes', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE FUNCTION mandate_notify_agent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'agents' THEN
        PERFORM pg_notify('mandate_changes', 'agent:' || NEW.id);
    ELSE
        PERFORM pg_notify('mandate_changes', 'agent:' || NEW.agent_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER certificates_revoked_notify AFTER UPDATE OF status ON certificates
    FOR EACH ROW WHEN (NEW.status = 'revoked' AND OLD.status IS DISTINCT FROM 'revoked')
    EXECUTE FUNCTION mandate_notify('revocation');
CREATE TRIGGER ocsp_feed_notify AFTER UPDATE ON ocsp_feed
    FOR EACH STATEMENT EXECUTE FUNCTION mandate_notify('ocsp');
CREATE TRIGGER ca_certificates_notify AFTER INSERT OR UPDATE ON ca_certificates
    FOR EACH STATEMENT EXECUTE FUNCTION mandate_notify('ca');

CREATE TRIGGER agents_notify AFTER UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION mandate_notify_agent();
CREATE TRIGGER mandates_notify AFTER INSERT OR UPDATE ON mandates
    FOR EACH ROW EXECUTE FUNCTION mandate_notify_agent();
CREATE TRIGGER certificates_notify AFTER INSERT OR UPDATE OF status ON certificates
    FOR EACH ROW EXECUTE FUNCTION mandate_notify_agent();
CREATE TRIGGER baselines_notify AFTER INSERT OR UPDATE ON baselines
    FOR EACH ROW EXECUTE FUNCTION mandate_notify_agent();
