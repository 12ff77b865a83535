//! Running independent jobs on a pool of scoped threads, results in input order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The number of worker threads: `requested`, or the number of cores.
pub fn threads(requested: Option<u16>) -> usize {
    requested.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from)
}

/// Applies `f` to every item on `threads` workers; `done` is called after each item. The output
/// is in input order whatever the scheduling, so results do not depend on the thread count.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
    done: impl Fn() + Sync,
) -> Vec<R> {
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = f(item);
                    *slots[index].lock().expect("no worker panics while holding a slot") = Some(result);
                    done();
                }
            });
        }
    });
    slots.into_iter().map(|slot| slot.into_inner().ok().flatten().expect("every item ran")).collect()
}
