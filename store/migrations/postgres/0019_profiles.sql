-- Certificate profiles (issue 18): an organization's default profile and its longest lifetime,
-- the profile an ACME order asked for, and the profile a certificate was issued under.
ALTER TABLE organizations ADD COLUMN default_profile TEXT;
ALTER TABLE organizations ADD COLUMN max_validity_secs BIGINT;
ALTER TABLE acme_orders ADD COLUMN profile TEXT;
ALTER TABLE certificates ADD COLUMN profile TEXT;
