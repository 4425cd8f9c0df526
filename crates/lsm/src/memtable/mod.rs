//! The memtable: an ordered, arena-backed map of internal keys (in progress).
