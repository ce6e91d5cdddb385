//! Fair service of the shard lanes: each turn starts where the previous one stopped.
//!
//! At most `max_in_flight_requests` calls run at once. With more busy shards than that, a
//! fixed visiting order (a hash map's) would serve the same first lanes every turn and let the
//! last ones wait without bound; starting each turn at the first lane the previous turn could
//! not serve bounds every lane's wait to a few turns.

/// Where the next turn over the lanes starts. Pure: the caller owns the lanes.
#[derive(Debug, Default, Clone)]
pub(crate) struct LaneRotation {
    next: usize,
}

impl LaneRotation {
    /// The lane indices of one turn over `lanes` lanes, in visiting order.
    pub(crate) fn turn(&self, lanes: usize) -> impl Iterator<Item = usize> + use<> {
        let start = if lanes == 0 { 0 } else { self.next % lanes };
        (0..lanes).map(move |step| (start + step) % lanes)
    }

    /// The turn stopped before serving lane `index` (no room for another call): the next turn
    /// starts there.
    pub(crate) fn stopped_at(&mut self, index: usize) {
        self.next = index;
    }

    /// The turn visited every lane: the next one starts one further, so no lane is always first.
    pub(crate) fn completed(&mut self, lanes: usize) {
        if lanes > 0 {
            self.next = (self.next % lanes + 1) % lanes;
        }
    }

    /// Lane `index` was removed: later lanes moved down by one.
    pub(crate) fn removed(&mut self, index: usize) {
        if index < self.next {
            self.next -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `turns` turns over `lanes` always-busy lanes with room for `slots` calls per turn
    /// (every call finishes before the next turn); returns each lane's longest wait in turns.
    fn longest_waits(lanes: usize, slots: usize, turns: usize) -> Vec<usize> {
        let mut rotation = LaneRotation::default();
        let mut last_served = vec![0usize; lanes];
        let mut longest = vec![0usize; lanes];
        for turn in 1..=turns {
            let mut stopped = None;
            for (in_flight, index) in rotation.turn(lanes).enumerate() {
                if in_flight == slots {
                    stopped = Some(index);
                    break;
                }
                longest[index] = longest[index].max(turn - last_served[index]);
                last_served[index] = turn;
            }
            match stopped {
                Some(index) => rotation.stopped_at(index),
                None => rotation.completed(lanes),
            }
        }
        for (index, last) in last_served.iter().enumerate() {
            longest[index] = longest[index].max(turns + 1 - last);
        }
        longest
    }

    #[test]
    fn two_hundred_busy_shards_with_sixty_four_calls_each_wait_at_most_four_turns() {
        let waits = longest_waits(200, 64, 1_000);
        // 200 lanes / 64 per turn: every lane is served at least every ceil(200/64) = 4 turns.
        assert_eq!(waits.iter().max(), Some(&4), "{waits:?}");
        assert!(waits.iter().all(|&w| w >= 3), "nobody is served every turn");
    }

    #[test]
    fn fewer_lanes_than_slots_are_all_served_every_turn() {
        let waits = longest_waits(10, 64, 100);
        assert!(waits.iter().all(|&w| w == 1), "{waits:?}");
    }

    #[test]
    fn removing_a_lane_keeps_the_next_lane_next() {
        let mut rotation = LaneRotation::default();
        rotation.stopped_at(5);
        rotation.removed(2);
        assert_eq!(rotation.turn(9).next(), Some(4), "lane 5 is now at index 4");
        rotation.removed(7);
        assert_eq!(rotation.turn(8).next(), Some(4));
        assert_eq!(rotation.turn(0).count(), 0);
    }
}
