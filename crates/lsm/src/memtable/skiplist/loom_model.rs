//! The loom model of the publication protocol (see the skiplist's module documentation).

use super::*;
use crate::internal_key::{encode_trailer, ValueKind};
use ::loom::sync::Arc;

/// One writer inserts three nodes of heights 2, 1 and 3 (out of key order, so that links
/// are replaced at several levels); one reader traverses the list level 0 and then seeks
/// each key through the upper levels. In every interleaving the reader sees a sorted
/// list of fully initialised nodes (the loom cell in each node checks that its creation
/// happens-before the reader's access), and every key it finds carries its own value.
#[test]
fn reader_sees_only_initialised_sorted_nodes() {
    let mut builder = ::loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = Some(3);
    }
    static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    builder.check(|| {
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let list = Arc::new(SkipList::new(Arena::new(1024, 4096), 1));
        let writer = {
            let list = list.clone();
            ::loom::thread::spawn(move || {
                for (key, height) in [(b"b", 2), (b"a", 1), (b"c", 3)] {
                    list.insert_with_height(key, encode_trailer(1, ValueKind::Put), key, height)
                        .expect("ample capacity");
                }
            })
        };
        let mut seen = Vec::new();
        let mut n = list.first();
        while let Some(node) = n {
            node.check_witness();
            assert_eq!(node.value(), node.key().user_key());
            seen.push(node.key().user_key()[0]);
            n = node.next(0);
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        for k in [b"a", b"b", b"c"] {
            if let Some(node) = list.seek(k, encode_trailer(1, ValueKind::Put)) {
                node.check_witness();
                assert!(node.key().user_key() >= &k[..]);
                assert_eq!(node.value(), node.key().user_key());
            }
        }
        writer.join().expect("writer");
        let mut all = Vec::new();
        let mut n = list.first();
        while let Some(node) = n {
            all.push(node.key().user_key()[0]);
            n = node.next(0);
        }
        assert_eq!(all, b"abc");
    });
    // Guards against a vacuous model (loom explores only what its dependency tracking
    // sees; see `writer_load`).
    let executions = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("skiplist loom model: {executions} executions");
    assert!(executions > 100, "only {executions} interleavings explored");
}
