//! Serializing into a per-thread scratch buffer.
//!
//! serde writers start from an empty `Vec` and grow it by doubling, so a 1 KB item costs five or
//! six allocations and four copies. Writing into a buffer that keeps its capacity and copying the
//! result out once costs one exactly sized allocation.

use bytes::Bytes;
use std::cell::RefCell;

/// Buffers that grew beyond this are not kept, so one huge item does not pin its memory.
const KEPT_CAPACITY: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `write` on an empty buffer and returns what it wrote.
pub(super) fn write_bytes<E>(
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<Bytes, E> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let written = write(&mut buf).map(|()| Bytes::copy_from_slice(&buf));
            if buf.capacity() > KEPT_CAPACITY {
                *buf = Vec::new();
            }
            written
        }
        // A serializer called from inside another one on this thread: a buffer of its own.
        Err(_) => {
            let mut buf = Vec::new();
            write(&mut buf).map(|()| Bytes::from(buf))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_starts_empty_and_errors_pass_through() {
        let first = write_bytes::<()>(|b| {
            b.extend_from_slice(b"first item");
            Ok(())
        });
        assert_eq!(first, Ok(Bytes::from_static(b"first item")));
        let second = write_bytes::<()>(|b| {
            b.extend_from_slice(b"2nd");
            Ok(())
        });
        assert_eq!(second, Ok(Bytes::from_static(b"2nd")));
        assert_eq!(write_bytes(|_| Err("refused")), Err("refused"));
    }

    #[test]
    fn a_nested_call_gets_its_own_buffer() {
        let outer = write_bytes::<()>(|b| {
            b.extend_from_slice(b"outer:");
            let inner = write_bytes::<()>(|b| {
                b.extend_from_slice(b"inner");
                Ok(())
            })?;
            b.extend_from_slice(&inner);
            Ok(())
        });
        assert_eq!(outer, Ok(Bytes::from_static(b"outer:inner")));
    }

    #[test]
    fn a_huge_item_is_not_kept() {
        let big = vec![7u8; KEPT_CAPACITY * 2];
        let written = write_bytes::<()>(|b| {
            b.extend_from_slice(&big);
            Ok(())
        });
        assert_eq!(written.map(|b| b.len()), Ok(big.len()));
        SCRATCH.with_borrow(|buf| assert!(buf.capacity() <= KEPT_CAPACITY));
    }
}
