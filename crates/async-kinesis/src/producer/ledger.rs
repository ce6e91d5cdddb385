//! Which items are still unresolved, by generation, so `flush()` knows when it is done.
//!
//! Every put belongs to the current generation; a flush closes the generation and waits until no
//! item of it or any older one is unresolved.

use std::collections::VecDeque;

/// Unresolved items per generation, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// `(generation, unresolved items)`, generations ascending; the last is the current one.
    open: VecDeque<(u64, usize)>,
    current: u64,
    unresolved: usize,
}

impl Ledger {
    /// Records a new item; returns its generation.
    pub(crate) fn add(&mut self) -> u64 {
        match self.open.back_mut() {
            Some((generation, count)) if *generation == self.current => *count += 1,
            _ => self.open.push_back((self.current, 1)),
        }
        self.unresolved += 1;
        self.current
    }

    /// An item of `generation` was resolved.
    pub(crate) fn resolve(&mut self, generation: u64) {
        if let Some((_, count)) = self.open.iter_mut().find(|(g, _)| *g == generation) {
            *count -= 1;
            self.unresolved -= 1;
        }
        while self.open.front().is_some_and(|(_, count)| *count == 0) {
            self.open.pop_front();
        }
    }

    /// Closes the current generation and returns it: a flush waits for it.
    pub(crate) fn close_generation(&mut self) -> u64 {
        let closed = self.current;
        self.current += 1;
        closed
    }

    /// Whether every item of `generation` and older is resolved.
    pub(crate) fn is_settled(&self, generation: u64) -> bool {
        self.open
            .front()
            .is_none_or(|(oldest, _)| *oldest > generation)
    }

    /// Items not yet resolved.
    pub(crate) fn unresolved(&self) -> usize {
        self.unresolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_waits_for_older_items_only() {
        let mut ledger = Ledger::default();
        let a = ledger.add();
        let b = ledger.add();
        let flush = ledger.close_generation();
        let c = ledger.add();
        assert_eq!((a, b, c), (0, 0, 1));
        assert!(!ledger.is_settled(flush));
        ledger.resolve(a);
        assert!(!ledger.is_settled(flush));
        ledger.resolve(b);
        assert!(ledger.is_settled(flush), "c is newer than the flush");
        assert_eq!(ledger.unresolved(), 1);
        ledger.resolve(c);
        assert_eq!(ledger.unresolved(), 0);
    }

    #[test]
    fn items_resolve_in_any_order() {
        let mut ledger = Ledger::default();
        let old = ledger.add();
        let first = ledger.close_generation();
        let new = ledger.add();
        let second = ledger.close_generation();
        ledger.resolve(new);
        assert!(!ledger.is_settled(first));
        assert!(!ledger.is_settled(second));
        ledger.resolve(old);
        assert!(ledger.is_settled(second));
    }

    #[test]
    fn an_empty_ledger_is_settled() {
        let mut ledger = Ledger::default();
        let flush = ledger.close_generation();
        assert!(ledger.is_settled(flush));
    }
}
