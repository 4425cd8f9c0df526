//! SSTables: blocks, filters, index and footer (in progress).
