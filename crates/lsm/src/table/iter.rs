//! Iterating a table: [`TableIter`], a two-level cursor (the index block's cursor picks a
//! data block, whose cursor yields the entries).

use super::block::{BlockError, BlockIter};
use super::error::TableError;
use super::index::BlockHandle;
use super::read_at::ReadAt;
use super::reader::{data_error, Table};

impl<R: ReadAt> Table<R> {
    /// A cursor over all entries, not positioned until a seek.
    pub fn iter(&self) -> TableIter<'_, R> {
        TableIter {
            table: self,
            index: self.index.iter(self.cmp),
            data: None,
            data_handle: BlockHandle::default(),
        }
    }
}

/// A cursor over a table's entries in key order: seek, next, prev. Each move reads at most
/// one data block (plus, for `next`/`prev` across an empty block, more — the builder never
/// writes empty blocks). After an error the cursor is not valid; a new seek may be tried.
pub struct TableIter<'a, R: ReadAt> {
    table: &'a Table<R>,
    index: BlockIter<'a>,
    data: Option<BlockIter<'a>>,
    data_handle: BlockHandle,
}

impl<'a, R: ReadAt> TableIter<'a, R> {
    /// Whether the cursor is on an entry.
    pub fn valid(&self) -> bool {
        self.data.as_ref().is_some_and(BlockIter::valid)
    }

    /// The current key.
    ///
    /// # Panics
    /// If the cursor is not valid (a programmer error).
    pub fn key(&self) -> &[u8] {
        match &self.data {
            Some(d) => d.key(),
            None => panic!("key() on an invalid table cursor"),
        }
    }

    /// The current value.
    ///
    /// # Panics
    /// If the cursor is not valid.
    pub fn value(&self) -> &[u8] {
        match &self.data {
            Some(d) => d.value(),
            None => panic!("value() on an invalid table cursor"),
        }
    }

    /// Moves to the first entry (not valid if the table is empty).
    pub fn seek_to_first(&mut self) -> Result<(), TableError> {
        let r = self.index.seek_to_first();
        self.index_moved(r)?;
        if let Some(d) = &mut self.data {
            let r = d.seek_to_first();
            self.data_moved(r)?;
        }
        self.skip_forward()
    }

    /// Moves to the last entry (not valid if the table is empty).
    pub fn seek_to_last(&mut self) -> Result<(), TableError> {
        let r = self.index.seek_to_last();
        self.index_moved(r)?;
        if let Some(d) = &mut self.data {
            let r = d.seek_to_last();
            self.data_moved(r)?;
        }
        self.skip_backward()
    }

    /// Moves to the first entry whose key is `>= target`; not valid if there is none.
    pub fn seek(&mut self, target: &[u8]) -> Result<(), TableError> {
        let t = self.table;
        let r = match t
            .index_prefixes
            .as_ref()
            .and_then(|p| p.seek(&t.index, t.cmp, target))
        {
            Some(i) => self.index.seek_to_restart_run(i),
            None => self.index.seek(target),
        };
        self.index_moved(r)?;
        if let Some(d) = &mut self.data {
            let r = d.seek(target);
            self.data_moved(r)?;
        }
        self.skip_forward()
    }

    /// Moves to the next entry; not valid after the last one.
    ///
    /// # Panics
    /// If the cursor is not valid.
    #[allow(
        clippy::should_implement_trait,
        reason = "a cursor that can fail and move both ways, not an Iterator"
    )]
    pub fn next(&mut self) -> Result<(), TableError> {
        assert!(self.valid(), "next() on an invalid table cursor");
        if let Some(d) = &mut self.data {
            let r = d.next();
            self.data_moved(r)?;
        }
        self.skip_forward()
    }

    /// Moves to the previous entry; not valid before the first one.
    ///
    /// # Panics
    /// If the cursor is not valid.
    pub fn prev(&mut self) -> Result<(), TableError> {
        assert!(self.valid(), "prev() on an invalid table cursor");
        if let Some(d) = &mut self.data {
            let r = d.prev();
            self.data_moved(r)?;
        }
        self.skip_backward()
    }

    /// After the index cursor moved: load the data block it points at (or none).
    fn index_moved(&mut self, r: Result<(), BlockError>) -> Result<(), TableError> {
        self.data = None;
        if let Err(e) = r {
            return Err(self.table.index_error(e));
        }
        if !self.index.valid() {
            return Ok(());
        }
        let t: &'a Table<R> = self.table;
        let h = t.decode_index_value(self.index.value())?;
        let block = t.data_block(h)?;
        self.data_handle = h;
        self.data = Some(block.iter(t.cmp));
        Ok(())
    }

    fn data_moved(&mut self, r: Result<(), BlockError>) -> Result<(), TableError> {
        r.map_err(|e| {
            self.data = None;
            data_error(self.table, self.data_handle, e)
        })
    }

    /// While the data cursor is exhausted, move to the next block's first entry.
    fn skip_forward(&mut self) -> Result<(), TableError> {
        while self.data.as_ref().is_some_and(|d| !d.valid()) {
            let r = self.index.next();
            self.index_moved(r)?;
            if let Some(d) = &mut self.data {
                let r = d.seek_to_first();
                self.data_moved(r)?;
            }
        }
        Ok(())
    }

    /// While the data cursor is exhausted, move to the previous block's last entry.
    fn skip_backward(&mut self) -> Result<(), TableError> {
        while self.data.as_ref().is_some_and(|d| !d.valid()) {
            let r = self.index.prev();
            self.index_moved(r)?;
            if let Some(d) = &mut self.data {
                let r = d.seek_to_last();
                self.data_moved(r)?;
            }
        }
        Ok(())
    }
}
