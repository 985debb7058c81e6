-- A market-data role (issue 19): an organization's price feed posts reference prices and may do
-- nothing else.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('admin', 'operator', 'compliance', 'auditor', 'agent', 'market-data'));
