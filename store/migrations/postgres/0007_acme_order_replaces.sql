-- RFC 9773: the certID of the certificate an order renews, echoed in the order object.
ALTER TABLE acme_orders ADD COLUMN replaces TEXT;
