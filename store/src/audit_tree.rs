//! The audit records as the leaves of an RFC 6962/9162 Merkle tree.
//!
//! Leaf `i` is record `seq = i + 1`. Its leaf hash is RFC 6962's `SHA-256(0x00 || leaf_data)`
//! over [`leaf_data`]: a domain string, a random 16-byte salt of the leaf's own and the digest of
//! the record's canonical encoding. The salt is what keeps a proof from leaking: the sibling
//! hashes an inclusion proof carries belong to other records (often another firm's), and without
//! a salt anyone could confirm a guess of such a record ("agent X revoked at 10:02") against them.
//!
//! The tree is kept as the "stored hashes" of golang.org/x/mod/sumdb/tlog (the `tlog_tiles`
//! crate): each leaf adds its own hash and those of the subtrees it completes, about two in all,
//! so roots and proofs of any size read `O(log n)` rows. The tree is derived from the records and
//! extended behind them in batches (see `extend_audit_tree`), never on the path of the write that
//! appends a record; a checkpoint signs only what the tree covers.

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use tlog_tiles::tlog::{self, Hash, HashReader};

use crate::audit::{AuditFields, ChainCheck, GENESIS_HASH, record_hash};
use crate::db::{Backend, values_rows};
use crate::{Store, StoreError};

/// Bytes of a leaf's salt.
pub const SALT_LEN: usize = 16;
/// Rows per multi-row INSERT (well under either backend's parameter limit).
const INSERT_CHUNK: usize = 1000;

/// The domain string that starts every leaf.
const LEAF_DOMAIN: &[u8] = b"mandate-audit-leaf-v1";

/// The digest of a record's canonical encoding: [`record_hash`]'s encoding of its fields without
/// the previous record's hash (the chain is not part of a leaf, so a proof needs no neighbour).
pub fn content_hash(f: &AuditFields<'_>) -> [u8; 32] {
    record_hash(f, &[])
}

/// What a leaf hashes: `"mandate-audit-leaf-v1"`, the 16-byte salt, then [`content_hash`].
pub fn leaf_data(f: &AuditFields<'_>, salt: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(LEAF_DOMAIN.len() + salt.len() + 32);
    d.extend_from_slice(LEAF_DOMAIN);
    d.extend_from_slice(salt);
    d.extend_from_slice(&content_hash(f));
    d
}

/// A record's leaf hash: `SHA-256(0x00 || leaf_data)` (RFC 6962 §2.1).
pub fn leaf_hash(f: &AuditFields<'_>, salt: &[u8]) -> Hash {
    tlog::record_hash(&leaf_data(f, salt))
}

/// A tree computed in memory from its leaves, keeping only the hashes later leaves and roots
/// need (the right edge: at most 64): for checking a whole log from its records.
#[derive(Debug, Default)]
pub struct TreeBuilder {
    size: u64,
    edge: HashMap<u64, Hash>,
}

impl TreeBuilder {
    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the next leaf.
    pub fn push(&mut self, leaf: Hash) -> Result<(), StoreError> {
        let reader = MapReader::new(&self.edge);
        let new =
            tlog::stored_hashes_for_record_hash(self.size, leaf, &reader).map_err(tree_err)?;
        let first = tlog::stored_hash_index(0, self.size);
        for (i, h) in new.into_iter().enumerate() {
            self.edge.insert(first + i as u64, h);
        }
        self.size += 1;
        let keep = tlog::sub_tree_index(0, self.size, Vec::new());
        self.edge.retain(|k, _| keep.contains(k));
        Ok(())
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Result<Hash, StoreError> {
        tlog::tree_hash(self.size, &MapReader::new(&self.edge)).map_err(tree_err)
    }
}

fn tree_err(e: tlog::Error) -> StoreError {
    StoreError::Corrupt(format!("audit tree: {e}"))
}

/// A [`HashReader`] over hashes at hand, which notes the ones it lacks: the tlog functions ask
/// for every hash they need in one call, so a first run learns what to fetch and a second one,
/// with those fetched, computes.
struct MapReader<'a> {
    map: &'a HashMap<u64, Hash>,
    missing: RefCell<Vec<u64>>,
}

impl<'a> MapReader<'a> {
    fn new(map: &'a HashMap<u64, Hash>) -> Self {
        MapReader {
            map,
            missing: RefCell::new(Vec::new()),
        }
    }
}

impl HashReader for MapReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        let mut out = Vec::with_capacity(indexes.len());
        let mut missing = self.missing.borrow_mut();
        for i in indexes {
            match self.map.get(i) {
                Some(h) => out.push(*h),
                None => missing.push(*i),
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(tlog::Error::IndexesNotInTree)
        }
    }
}

/// Stored hashes by index, from the database.
async fn fetch_hashes(
    conn: &mut AnyConnection,
    backend: Backend,
    indexes: &[u64],
    into: &mut HashMap<u64, Hash>,
) -> Result<(), StoreError> {
    for chunk in indexes.chunks(INSERT_CHUNK) {
        let sql = format!(
            "SELECT idx, hash FROM audit_tree WHERE idx IN {}",
            values_rows(backend, 1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in chunk {
            q = q.bind(i64::try_from(*i).map_err(|_| StoreError::Corrupt("tree index".into()))?);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let idx: i64 = r.try_get("idx")?;
            let hash: Vec<u8> = r.try_get("hash")?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("audit tree hash {idx}: not 32 bytes")))?;
            into.insert(idx as u64, Hash(hash));
        }
    }
    Ok(())
}

/// Runs a tlog computation that reads stored hashes, fetching what it asks for.
async fn with_stored<T>(
    conn: &mut AnyConnection,
    backend: Backend,
    have: &mut HashMap<u64, Hash>,
    run: impl Fn(&MapReader<'_>) -> Result<T, tlog::Error>,
) -> Result<T, StoreError> {
    let missing = {
        let reader = MapReader::new(have);
        match run(&reader) {
            Ok(v) => return Ok(v),
            Err(tlog::Error::IndexesNotInTree) => reader.missing.take(),
            Err(e) => return Err(tree_err(e)),
        }
    };
    fetch_hashes(conn, backend, &missing, have).await?;
    let reader = MapReader::new(have);
    match run(&reader) {
        Ok(v) => Ok(v),
        Err(tlog::Error::IndexesNotInTree) => Err(StoreError::Corrupt(format!(
            "audit tree: stored hashes {:?} are missing",
            reader.missing.take()
        ))),
        Err(e) => Err(tree_err(e)),
    }
}

/// Leaves in the stored tree.
async fn stored_size(conn: &mut AnyConnection) -> Result<u64, StoreError> {
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(idx) FROM audit_tree")
        .fetch_one(&mut *conn)
        .await?;
    Ok(match max {
        None => 0,
        Some(m) => {
            // The last stored hash is the top of the subtree the last leaf completed.
            let (level, n) = tlog::split_stored_hash_index(m as u64);
            (n + 1) << level
        }
    })
}

impl Store {
    /// Leaves in the audit tree (records it covers, from the first).
    pub async fn audit_tree_size(&self) -> Result<u64, StoreError> {
        let mut conn = self.reader.acquire().await?;
        stored_size(&mut conn).await
    }

    /// Makes leaves of up to `max` records the tree does not cover yet, in one write; returns
    /// the tree's size after it. Each record's chain hash is checked first: the tree stops at a
    /// broken record (an error naming it), so no checkpoint ever signs one.
    ///
    /// The leaves and nodes are computed from a read connection, so the writer (which
    /// issuance waits for) only inserts them, after checking that the tree is still the size
    /// they extend (another node may have extended it meanwhile: then nothing is written).
    pub async fn extend_audit_tree(&self, max: u32) -> Result<u64, StoreError> {
        let backend = self.backend();
        let mut conn = self.reader.acquire().await?;
        let (size, leaves, nodes) = extension(&mut conn, backend, i64::from(max)).await?;
        drop(conn);
        if leaves.is_empty() {
            return Ok(size);
        }
        self.writer
            .write(move |conn| Box::pin(insert_extension(conn, backend, size, leaves, nodes)))
            .await
    }

    /// The root of the audit tree over its first `size` leaves.
    pub async fn audit_tree_root(&self, size: u64) -> Result<Hash, StoreError> {
        let mut conn = self.reader.acquire().await?;
        if size > stored_size(&mut conn).await? {
            return Err(StoreError::Conflict(format!(
                "the audit tree has fewer than {size} leaves"
            )));
        }
        let mut have = HashMap::new();
        with_stored(&mut conn, self.backend(), &mut have, |r| {
            tlog::tree_hash(size, r)
        })
        .await
    }

    /// The inclusion proofs of records `seqs` in the tree of `size` leaves, in order: the
    /// hashes they share are read once (a page of proofs costs a few reads, not one each).
    pub async fn audit_inclusion_proofs(
        &self,
        seqs: &[i64],
        size: u64,
    ) -> Result<Vec<Vec<Hash>>, StoreError> {
        let mut leaves = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let leaf = u64::try_from(seq - 1)
                .ok()
                .filter(|l| *l < size)
                .ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "audit record {seq} is not in the tree of {size} leaves"
                    ))
                })?;
            leaves.push(leaf);
        }
        let mut conn = self.reader.acquire().await?;
        let mut have = HashMap::new();
        // First the indexes every proof asks for, then one round of reads, then the proofs.
        let mut wanted = Vec::new();
        for &leaf in &leaves {
            let reader = MapReader::new(&have);
            match tlog::prove_record(size, leaf, &reader) {
                Ok(_) => {}
                Err(tlog::Error::IndexesNotInTree) => wanted.extend(reader.missing.take()),
                Err(e) => return Err(tree_err(e)),
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        fetch_hashes(&mut conn, self.backend(), &wanted, &mut have).await?;
        leaves
            .iter()
            .map(|&leaf| {
                let reader = MapReader::new(&have);
                tlog::prove_record(size, leaf, &reader).map_err(|e| match e {
                    tlog::Error::IndexesNotInTree => StoreError::Corrupt(format!(
                        "audit tree: stored hashes {:?} are missing",
                        reader.missing.take()
                    )),
                    e => tree_err(e),
                })
            })
            .collect()
    }

    /// The consistency proof from the tree of `from` leaves to the tree of `to` (RFC 6962).
    pub async fn audit_consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        if from == 0 || from > to {
            return Err(StoreError::Conflict(format!(
                "no consistency proof from {from} to {to} leaves: need 1 <= from <= to"
            )));
        }
        let mut conn = self.reader.acquire().await?;
        if to > stored_size(&mut conn).await? {
            return Err(StoreError::Conflict(format!(
                "the audit tree has fewer than {to} leaves"
            )));
        }
        let mut have = HashMap::new();
        with_stored(&mut conn, self.backend(), &mut have, |r| {
            tlog::prove_tree(to, from, r)
        })
        .await
    }

    /// The salts of the leaves of these records (those the tree covers), by seq.
    pub async fn audit_leaf_salts(
        &self,
        seqs: &[i64],
    ) -> Result<HashMap<i64, Vec<u8>>, StoreError> {
        let mut out = HashMap::with_capacity(seqs.len());
        for chunk in seqs.chunks(INSERT_CHUNK) {
            let sql = format!(
                "SELECT seq, salt FROM audit_leaves WHERE seq IN {}",
                values_rows(self.backend(), 1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in chunk {
                q = q.bind(*s);
            }
            for r in q.fetch_all(&self.reader).await? {
                out.insert(r.try_get("seq")?, r.try_get("salt")?);
            }
        }
        Ok(out)
    }
}

/// Leaves (seq, salt) and stored hashes (index, hash) that extend the tree.
type Extension = (u64, Vec<(i64, [u8; SALT_LEN])>, Vec<(u64, Hash)>);

/// Computes one extension of the tree of the current size (read only).
async fn extension(
    conn: &mut AnyConnection,
    backend: Backend,
    max: i64,
) -> Result<Extension, StoreError> {
    let size = stored_size(&mut *conn).await?;
    let first = i64::try_from(size).map_err(|_| StoreError::Corrupt("tree size".into()))? + 1;
    let rows = sqlx::query(
        "SELECT seq, at_ms, actor, action, subject, cert_fingerprint, details, risk_score,
                prev_hash, hash, organization, person
         FROM audit_events WHERE seq >= $1 AND hash IS NOT NULL ORDER BY seq LIMIT $2",
    )
    .bind(first)
    .bind(max)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok((size, Vec::new(), Vec::new()));
    }
    let prev: Vec<u8> = if first == 1 {
        GENESIS_HASH.to_vec()
    } else {
        let h: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = $1")
                .bind(first - 1)
                .fetch_optional(&mut *conn)
                .await?;
        h.flatten()
            .ok_or_else(|| StoreError::Corrupt(format!("audit record {} is missing", first - 1)))?
    };
    let mut chain = ChainCheck::resume(first, prev);
    let mut have: HashMap<u64, Hash> = HashMap::new();
    let mut leaves: Vec<(i64, [u8; SALT_LEN])> = Vec::with_capacity(rows.len());
    let mut nodes: Vec<(u64, Hash)> = Vec::with_capacity(rows.len() * 2);
    for row in &rows {
        let r = crate::audit::audit_row(row)?;
        chain.check(&r).map_err(|b| {
            StoreError::Corrupt(format!(
                "audit record {} cannot join the tree: {}",
                b.seq, b.reason
            ))
        })?;
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt)
            .map_err(|e| StoreError::Corrupt(format!("no randomness for a leaf salt: {e}")))?;
        let leaf = leaf_hash(&AuditFields::of(&r), &salt);
        let n = (r.seq - 1) as u64;
        let new = with_stored(&mut *conn, backend, &mut have, |rd| {
            tlog::stored_hashes_for_record_hash(n, leaf, rd)
        })
        .await?;
        let at = tlog::stored_hash_index(0, n);
        for (i, h) in new.into_iter().enumerate() {
            have.insert(at + i as u64, h);
            nodes.push((at + i as u64, h));
        }
        leaves.push((r.seq, salt));
    }
    Ok((size, leaves, nodes))
}

/// Writes an extension computed for a tree of `size` leaves, if the tree is still that size;
/// returns the tree's size after.
async fn insert_extension(
    conn: &mut AnyConnection,
    backend: Backend,
    size: u64,
    leaves: Vec<(i64, [u8; SALT_LEN])>,
    nodes: Vec<(u64, Hash)>,
) -> Result<u64, StoreError> {
    let now = stored_size(&mut *conn).await?;
    if now != size {
        return Ok(now);
    }
    for chunk in leaves.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO audit_leaves (seq, salt) VALUES {}",
            values_rows(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (seq, salt) in chunk {
            q = q.bind(*seq).bind(salt.to_vec());
        }
        q.execute(&mut *conn).await?;
    }
    for chunk in nodes.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO audit_tree (idx, hash) VALUES {}",
            values_rows(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (idx, h) in chunk {
            q = q.bind(*idx as i64).bind(h.0.to_vec());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(size + leaves.len() as u64)
}

/// The SHA-256 of a DER SubjectPublicKeyInfo, whose first four bytes are a C2SP signed-note
/// ECDSA key id.
pub fn spki_digest(spki_der: &[u8]) -> [u8; 32] {
    Sha256::digest(spki_der).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_agrees_with_rfc6962_roots() {
        // RFC 6962's MTH over one, two and three leaves, by hand.
        let l: Vec<Hash> = (0u8..3).map(|i| tlog::record_hash(&[i])).collect();
        let mut b = TreeBuilder::default();
        b.push(l[0]).unwrap();
        assert_eq!(b.root().unwrap(), l[0]);
        b.push(l[1]).unwrap();
        assert_eq!(b.root().unwrap(), tlog::node_hash(l[0], l[1]));
        b.push(l[2]).unwrap();
        assert_eq!(
            b.root().unwrap(),
            tlog::node_hash(tlog::node_hash(l[0], l[1]), l[2])
        );
    }

    #[test]
    fn the_builder_keeps_only_the_right_edge() {
        let mut b = TreeBuilder::default();
        for i in 0u32..1000 {
            b.push(tlog::record_hash(&i.to_be_bytes())).unwrap();
            assert!(b.edge.len() <= 10, "{} hashes kept at {}", b.edge.len(), i);
        }
        assert_eq!(b.size(), 1000);
    }
}
