-- Store search newest first (stores/item_reads.py) as one ordered index scan: a search
-- reads the owner's items in the order it returns them and stops after LIMIT matches,
-- instead of reading all of the owner's items under the prefix and sorting them. The
-- prefix range is checked on the index entry (ns_path is in the key), the filter on the row.
-- Cost: updated_at changes on every put, so value updates are no longer HOT (they add an
-- entry to this index and the primary key); the embeddings live in store_vectors, so the
-- HNSW index is still not touched by a value update.
CREATE INDEX store_items_recent ON store_items (org_id, owner_id, updated_at DESC, ns_path, key);
