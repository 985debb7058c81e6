-- Issue 20: the audit records become the leaves of an RFC 6962/9162 Merkle tree, and checkpoints
-- become C2SP signed notes (tlog-checkpoint) over the tree's size and root.
--
-- A leaf is record `seq` (leaf index seq - 1) with a random salt of its own, so that the hashes a
-- proof carries for the neighbouring leaves say nothing about those records (another firm's):
-- see `leaf_data` in store/src/audit_tree.rs. The tree's nodes are kept as the "stored hashes"
-- of golang.org/x/mod/sumdb/tlog (index = stored_hash_index(level, n)), about two per leaf.
-- Records written before this migration become the first leaves when the daemon first extends
-- the tree after it. All three tables are append-only, like the records themselves.

CREATE TABLE audit_leaves (
    seq   BIGINT PRIMARY KEY REFERENCES audit_events(seq),
    salt  BYTEA NOT NULL
);

CREATE TABLE audit_tree (
    idx   BIGINT PRIMARY KEY,
    hash  BYTEA NOT NULL
);

-- Reports and exports read one agent's records (its own, its certificates') by subject.
CREATE INDEX audit_events_subject ON audit_events(subject, seq);

-- The signed note of a tree checkpoint (NULL for the chain checkpoints signed before this
-- migration), and the tree's root hash at `seq` records.
ALTER TABLE audit_checkpoints ADD COLUMN note TEXT;
ALTER TABLE audit_checkpoints ADD COLUMN root BYTEA;

CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION mandate_refuse('audit_leaves is append-only');
CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION mandate_refuse('audit_leaves is append-only');
CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
    FOR EACH ROW EXECUTE FUNCTION mandate_refuse('audit_tree is append-only');
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
    FOR EACH ROW EXECUTE FUNCTION mandate_refuse('audit_tree is append-only');

-- While a node refuses this database (its audit log is behind the audit anchor in the HSM: an
-- older copy), the reason is kept here, so that the stand-alone OCSP responders, which read the
-- database but hold no HSM, refuse too instead of serving its stale answers. `mandate recover`
-- clears it.
CREATE TABLE serving_refusal (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    reason  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
