//! Unit tests of catch-up by ranges: cutting, the window, and the queue of stretches
//! (order and coverage, as a property).

use super::*;

fn plan(next_after: StreamId, end: StreamId, density: f64) -> Plan {
    Plan {
        next_after,
        end,
        density,
    }
}

#[test]
fn every_range_moves_forward_and_stays_within_the_stream() {
    let end = StreamId::new(10_000, 3);
    // Dense (many entries per ms), sparse, and after a range that ended on a ms.
    for (after, density) in [
        (StreamId::new(5, 2), 500.0),
        (StreamId::new(5, u64::MAX), 500.0),
        (StreamId::new(5, 0), 0.01),
        (StreamId::new(9_999, u64::MAX), 1.0),
    ] {
        let until = plan(after, end, density).cut(1_000);
        assert!(until > after, "{after} → {until}");
        assert!(until <= end);
    }
    // 1 000 entries at 10 per ms: a range of 100 ms (100..=199).
    let until = plan(StreamId::new(100, 0), end, 10.0).cut(1_000);
    assert_eq!(until, StreamId::new(199, u64::MAX));
}

/// The stretches of `queue`: bounds, and whether each is started (else a rest).
fn stretches(queue: &Queue<()>) -> Vec<(StreamId, StreamId, bool)> {
    queue
        .slots
        .iter()
        .map(|slot| {
            let started = matches!(slot.state, State::Started { .. });
            (slot.after, slot.until, started)
        })
        .collect()
}

fn start_next(queue: &mut Queue<()>, plan: &mut Plan, aim: usize) -> bool {
    queue.start_next(plan, aim, 2 * aim + 1, |_, _, _| ())
}

#[test]
fn the_rest_of_a_full_range_is_cut_at_the_density_it_showed_and_read_first() {
    let id = StreamId::new;
    let mut plan = plan(id(0, u64::MAX), id(1_000, u64::MAX), 10.0);
    let mut queue = Queue::<()>::default();
    // 1 000 entries at 10 per ms: ranges of 100 ms.
    assert!(start_next(&mut queue, &mut plan, 1_000));
    assert!(start_next(&mut queue, &mut plan, 1_000));
    // The first came back full, its last entry in ms 20: 2 001 entries over 21 ms,
    // about 95 per ms. It ends at its last entry; its rest comes next, not read yet.
    queue.came_back_full(0, 2_001, id(20, 7));
    assert_eq!(
        stretches(&queue),
        [
            (id(0, u64::MAX), id(20, 7), true),
            (id(20, 7), id(100, u64::MAX), false),
            (id(100, u64::MAX), id(200, u64::MAX), true),
        ]
    );
    assert_eq!(queue.started(), 2, "a rest holds no read");
    // The next ranges started are pieces of the rest, of about 1 000 entries at its
    // density (10 ms), before anything new.
    assert!(start_next(&mut queue, &mut plan, 1_000));
    assert!(start_next(&mut queue, &mut plan, 1_000));
    assert_eq!(
        stretches(&queue)[1..4],
        [
            (id(20, 7), id(29, u64::MAX), true),
            (id(29, u64::MAX), id(39, u64::MAX), true),
            (id(39, u64::MAX), id(100, u64::MAX), false),
        ]
    );
    assert_eq!(plan.next_after, id(200, u64::MAX), "nothing new was cut");
    // Pieces follow until the rest is read; the last ends where its range did.
    while stretches(&queue).iter().any(|s| !s.2) {
        assert!(start_next(&mut queue, &mut plan, 1_000));
    }
    let got = stretches(&queue);
    assert_eq!(got.len(), 11, "{got:?}");
    assert_eq!(got[8], (id(89, u64::MAX), id(99, u64::MAX), true));
    assert_eq!(got[9], (id(99, u64::MAX), id(100, u64::MAX), true));
    assert_eq!(plan.next_after, id(200, u64::MAX), "nothing new was cut");
    // Then new ranges again.
    assert!(start_next(&mut queue, &mut plan, 1_000));
    assert_eq!(plan.next_after, id(300, u64::MAX));

    // A range found full as it is handed on: its rest goes first.
    let mut queue = Queue::<()>::default();
    let mut plan = self::plan(id(0, u64::MAX), id(1_000, u64::MAX), 10.0);
    assert!(start_next(&mut queue, &mut plan, 1_000));
    assert!(start_next(&mut queue, &mut plan, 1_000));
    let first = queue.slots.pop_front().expect("two ranges");
    queue.rest_first(first.after, id(20, 7), first.until, 2_001);
    assert!(start_next(&mut queue, &mut plan, 1_000));
    assert_eq!(stretches(&queue)[0], (id(20, 7), id(29, u64::MAX), true));
    // A full range whose last entry is its end has no rest.
    queue.rest_first(id(0, 0), id(5, 0), id(5, 0), 10);
    assert_eq!(stretches(&queue)[0], (id(20, 7), id(29, u64::MAX), true));
}

#[test]
fn the_window_starts_at_the_bandwidth_delay_product_and_doubles_when_late() {
    let ms = Duration::from_millis;
    // Loopback: a read of 1 000 takes a few ms, far less than two ranges' worth.
    assert_eq!(RangeWindow::new(ms(3), 2_000, 24).ranges(), 2);
    // 50 ms: 50 ms × 400 000/s = 20 000 entries in flight, ten ranges of 2 000.
    assert_eq!(RangeWindow::new(ms(50), 2_000, 24).ranges(), 10);
    // 150 ms wants 30 ranges: capped.
    assert_eq!(RangeWindow::new(ms(150), 2_000, 24).ranges(), 24);
    // A bound of one is kept, whatever the link.
    assert_eq!(RangeWindow::new(ms(3), 2_000, 1).ranges(), 1);
    assert_eq!(RangeWindow::new(ms(150), 2_000, 0).ranges(), 1);

    let mut window = RangeWindow::new(ms(3), 2_000, 24);
    // Back in time: the consumer is the bottleneck; the window stays.
    window.needed(true);
    assert_eq!(window.ranges(), 2);
    // Late: doubles, up to the bound, and never shrinks.
    for expected in [4, 8, 16, 24, 24] {
        window.needed(false);
        assert_eq!(window.ranges(), expected);
    }
    window.needed(true);
    assert_eq!(window.ranges(), 24);
}

#[test]
fn a_backlog_is_far_behind_only_beyond_two_reads() {
    let info = |added: u64| StreamInfo {
        length: added,
        first_entry: Some(StreamId::new(1, 0)),
        last_entry: Some(StreamId::new(added, 0)),
        last_generated: StreamId::new(added, 0),
        max_deleted: None,
        entries_added: Some(added),
    };
    let at = |pos: u64| TailPosition {
        after: StreamId::new(pos, 0),
        entries_added: Some(pos),
    };
    assert!(far_behind(at(100), &info(10_000), 100));
    assert!(!far_behind(at(100), &info(300), 100));
    assert!(!far_behind(at(10_000), &info(10_000), 100));
}

proptest::proptest! {
    /// However ranges come back full (found early by the harvest or as they are
    /// handed on), the stretches handed on are disjoint, in order, each moving
    /// forward, and cover the backlog exactly; the oldest stretch is always started
    /// when needed, and never more ranges than the window are started.
    #[test]
    fn ranges_are_handed_on_in_order_and_cover_the_backlog_exactly(
        start_ms in 0u64..1_000,
        len_ms in 0u64..3_000,
        density in 0.01f64..500.0,
        window in 1usize..8,
        ops in proptest::collection::vec((0u8..3, proptest::prelude::any::<u16>(), 1u16..5_000), 0..300),
    ) {
        let first = StreamId::new(start_ms, 3);
        let end = StreamId::new(start_ms + len_ms, 5);
        let mut plan = plan(first, end, density);
        let mut queue = Queue::<()>::default();
        let mut handed: Vec<(StreamId, StreamId)> = Vec::new();
        let between = |after: StreamId, until: StreamId, a: u16, b: u16| {
            let ms = after.ms + u64::from(a) % (until.ms - after.ms + 1);
            Some(StreamId::new(ms, u64::from(b))).filter(|last| after < *last && *last < until)
        };
        // The ops, then pops until the backlog is handed on.
        let drain = std::iter::repeat_n((0u8, 1u16, 1u16), 100_000);
        for (op, a, b) in ops.into_iter().chain(drain) {
            while queue.started() < window && start_next(&mut queue, &mut plan, 100) {}
            proptest::prop_assert!(queue.started() <= window);
            let stretches = stretches(&queue);
            let from = handed.last().map_or(first, |h| h.1);
            if let Some(front) = stretches.first() {
                proptest::prop_assert_eq!(front.0, from);
                proptest::prop_assert!(front.2, "the oldest stretch is started");
            }
            for w in stretches.windows(2) {
                proptest::prop_assert_eq!(w[0].1, w[1].0);
            }
            for s in &stretches {
                proptest::prop_assert!(s.0 < s.1);
            }
            proptest::prop_assert_eq!(stretches.last().map_or(from, |s| s.1), plan.next_after);
            if stretches.is_empty() {
                break;
            }
            match op {
                0 => {
                    let slot = queue.slots.pop_front().expect("not empty");
                    // Sometimes found full as it is handed on.
                    match between(slot.after, slot.until, a, b).filter(|_| a % 2 == 0) {
                        Some(last) => {
                            queue.rest_first(slot.after, last, slot.until, usize::from(b));
                            handed.push((slot.after, last));
                        }
                        None => handed.push((slot.after, slot.until)),
                    }
                }
                1 => {
                    let i = usize::from(a) % queue.slots.len();
                    let slot = &queue.slots[i];
                    if matches!(slot.state, State::Started { .. }) {
                        if let Some(last) = between(slot.after, slot.until, a, b) {
                            queue.came_back_full(i, usize::from(b), last);
                        }
                    }
                }
                _ => {}
            }
        }
        proptest::prop_assert!(queue.slots.is_empty(), "handed on to the end");
        proptest::prop_assert_eq!(handed.last().map_or(first, |h| h.1), end);
        proptest::prop_assert_eq!(handed.first().map_or(first, |h| h.0), first);
        for w in handed.windows(2) {
            proptest::prop_assert_eq!(w[0].1, w[1].0, "contiguous, in order");
        }
    }
}
