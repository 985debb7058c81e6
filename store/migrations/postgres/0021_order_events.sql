-- Order events (issue 19): what an event says happened to an order, so that open orders,
-- net positions and order-to-trade ratios are rebuilt from the store after a restart, and the
-- decision of the pre-trade check that let the order through.
ALTER TABLE events ADD COLUMN quantity TEXT;
ALTER TABLE events ADD COLUMN price TEXT;
ALTER TABLE events ADD COLUMN order_type TEXT;
ALTER TABLE events ADD COLUMN order_state TEXT;
ALTER TABLE events ADD COLUMN client_order_id TEXT;
ALTER TABLE events ADD COLUMN fill_quantity TEXT;
ALTER TABLE events ADD COLUMN fill_price TEXT;
ALTER TABLE events ADD COLUMN decision_id TEXT;
CREATE INDEX events_orders ON events(agent_id, id) WHERE order_state IS NOT NULL;
