//! KV cache pages, owned by the engine: a free list of fixed-size pages.
//!
//! The backend stores the keys and values; the engine decides which pages a
//! sequence owns. A finished or cancelled sequence returns its pages at once.

/// Hands out KV pages.
#[derive(Debug, Clone)]
pub struct PageAllocator {
    free: Vec<u32>,
    total: usize,
    page_size: usize,
}

impl PageAllocator {
    /// `total` pages of `page_size` tokens.
    pub fn new(total: usize, page_size: usize) -> Self {
        Self {
            free: (0..total as u32).rev().collect(),
            total,
            page_size,
        }
    }

    /// Pages needed for `tokens` positions.
    pub fn pages_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.page_size)
    }

    /// Takes `n` pages, or none if fewer are free.
    pub fn alloc(&mut self, n: usize) -> Option<Vec<u32>> {
        if n > self.free.len() {
            return None;
        }
        let at = self.free.len() - n;
        let mut pages = self.free.split_off(at);
        pages.reverse();
        Some(pages)
    }

    /// Returns pages.
    pub fn release(&mut self, pages: &mut Vec<u32>) {
        self.free.extend(pages.drain(..).rev());
    }

    /// Free pages.
    pub fn free_pages(&self) -> usize {
        self.free.len()
    }

    /// All pages.
    pub fn total_pages(&self) -> usize {
        self.total
    }

    /// Tokens per page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_and_release() {
        let mut a = PageAllocator::new(4, 16);
        assert_eq!(a.pages_for(17), 2);
        let mut p = a.alloc(3).unwrap();
        assert_eq!(p, vec![0, 1, 2]);
        assert!(a.alloc(2).is_none());
        assert_eq!(a.free_pages(), 1);
        a.release(&mut p);
        assert!(p.is_empty());
        assert_eq!(a.free_pages(), 4);
        assert_eq!(a.alloc(4).unwrap().len(), 4);
    }
}
