//! The ordered parallel map every command uses: items go to worker threads and their
//! results come back in input order, so output never depends on the thread count.
//!
//! - [`stream`]: items produced on a thread of their own while earlier ones are worked
//!   on (reading overlaps the work); results handed on in order as they complete.
//! - [`map`] / [`map_chunks`]: the same over items already in memory.
//!
//! (The executor's per-shard pipeline has its own, with commit markers and resume.)

use std::collections::BTreeMap;

/// Worker threads for `threads` (0: one per core).
pub fn threads(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Runs `produce` on a thread of its own; every item it hands to its sink goes to one
/// of `threads` workers (each with its own state from `init`, e.g. a scratch buffer or
/// a tokenizer clone), and `consume` gets the results in the order the items were
/// produced. The sink returns false once the run is stopping; `produce` should then
/// return.
///
/// The first error of `consume` stops the run and is returned (the workers and
/// `produce` then see closed channels and stop); otherwise `produce`'s result is.
/// Results of later items wait, in memory, for an earlier one that is slow.
pub fn stream<S, I, R, E>(
    threads: usize,
    init: impl Fn() -> S + Sync,
    produce: impl FnOnce(&mut dyn FnMut(I) -> bool) -> Result<(), E> + Send,
    work: impl Fn(&mut S, I) -> R + Sync,
    mut consume: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    I: Send,
    R: Send,
    E: Send,
{
    let threads = threads.max(1);
    let (item_tx, item_rx) = crossbeam_channel::bounded::<(u64, I)>(threads * 2);
    let (out_tx, out_rx) = crossbeam_channel::bounded::<(u64, R)>(threads * 2);
    let (init, work) = (&init, &work);
    std::thread::scope(|scope| {
        // Owned here, so that returning early (an error) drops it: the workers' sends
        // then fail and they stop, and so does the producer, before the scope joins them.
        let out_rx = out_rx;
        for _ in 0..threads {
            let (rx, tx) = (item_rx.clone(), out_tx.clone());
            scope.spawn(move || {
                let mut state = init();
                for (n, item) in rx {
                    if tx.send((n, work(&mut state, item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop((item_rx, out_tx));
        let producer = scope.spawn(move || {
            let mut n = 0u64;
            produce(&mut |item| {
                n += 1;
                item_tx.send((n - 1, item)).is_ok()
            })
        });
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for (n, result) in &out_rx {
            pending.insert(n, result);
            while let Some(result) = pending.remove(&next) {
                consume(result)?;
                next += 1;
            }
        }
        // The workers are done: the producer either finished or failed.
        producer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// `work` on every item on up to `threads` threads; the results in input order. One
/// thread (or one item) runs here, without spawning.
pub fn map<I: Send, R: Send>(
    items: Vec<I>,
    threads: usize,
    work: impl Fn(I) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return items.into_iter().map(work).collect();
    }
    let mut out = Vec::with_capacity(items.len());
    let done: Result<(), std::convert::Infallible> = stream(
        threads.min(items.len()),
        || (),
        |sink| {
            for item in items {
                if !sink(item) {
                    break;
                }
            }
            Ok(())
        },
        |(), item| work(item),
        |r| {
            out.push(r);
            Ok(())
        },
    );
    let Ok(()) = done;
    out
}

/// `items` cut into one contiguous chunk per thread, `work(offset, chunk)` on each
/// (`offset`: the index of the chunk's first item); the results in input order.
pub fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(usize, &[T]) -> R + Sync,
) -> Vec<R> {
    let threads = threads.max(1);
    let chunk = items.len().div_ceil(threads).max(1);
    map(
        items.chunks(chunk).enumerate().collect(),
        threads,
        |(k, part)| work(k * chunk, part),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_input_order_whatever_the_thread_count() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [1, 2, 3, 8] {
            let squares = map(items.clone(), threads, |x| {
                // Uneven work, so that later items often finish first.
                if x % 7 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                x * x
            });
            assert_eq!(squares, items.iter().map(|x| x * x).collect::<Vec<_>>());
            let sums = map_chunks(&items, threads, |offset, part| {
                (offset, part.iter().sum::<u64>())
            });
            assert_eq!(sums.iter().map(|s| s.1).sum::<u64>(), 999 * 1000 / 2);
            assert_eq!(sums[0].0, 0);
            assert!(sums.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn the_first_error_stops_the_stream() {
        let mut seen = Vec::new();
        let r = stream(
            4,
            || 0u32,
            |sink| {
                for i in 0..u64::MAX {
                    if !sink(i) {
                        return Ok(());
                    }
                }
                Ok(())
            },
            |calls, i| {
                *calls += 1;
                i
            },
            |i| {
                if i == 100 {
                    return Err(format!("stopped at {i}"));
                }
                seen.push(i);
                Ok(())
            },
        );
        assert_eq!(r, Err("stopped at 100".to_string()));
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        let r: Result<(), String> = stream(
            2,
            || (),
            |sink| {
                sink(1);
                Err("unreadable".into())
            },
            |(), i: u32| i,
            |_| Ok(()),
        );
        assert_eq!(r, Err("unreadable".to_string()));
    }
}
