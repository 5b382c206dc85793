//! Interleaved A/B variants: whose turn it is. A mix entry with variants (`Weighted::variants`)
//! runs them in turn, one iteration each, so that every second holds each variant's traffic in
//! equal shares and whatever drifts over the phase drifts for all of them alike.

use std::cell::RefCell;
use std::rc::Rc;

/// The next turn of each mix entry. A closed-model VU keeps its own, starting at its number, so
/// that neighbouring VUs start on different variants; the open-model VUs of a worker share the
/// worker's, starting at its first arrival number, so that the worker's arrivals take the
/// variants in turn whichever VU runs them. An entry's count is its own: in a phase mixing
/// scenarios, each scenario's iterations alternate between its variants.
#[derive(Debug, Clone)]
pub struct Turns {
    start: u64,
    next: Next,
}

#[derive(Debug, Clone)]
enum Next {
    /// Empty until the first turn: an idle VU stays small.
    Own(Vec<u64>),
    Shared(Rc<RefCell<Vec<u64>>>),
}

impl Turns {
    pub fn own(start: u64) -> Turns {
        Turns {
            start,
            next: Next::Own(Vec::new()),
        }
    }

    /// Turns to be shared by every clone.
    pub fn shared(start: u64) -> Turns {
        Turns {
            start,
            next: Next::Shared(Rc::default()),
        }
    }

    /// Which of `n` variants entry `entry` runs now; the next call gives the next one.
    pub fn take(&mut self, entry: usize, n: usize) -> usize {
        let bump = |v: &mut Vec<u64>| {
            if v.len() <= entry {
                v.resize(entry + 1, 0);
            }
            v[entry] += 1;
            v[entry] - 1
        };
        let k = match &mut self.next {
            Next::Own(v) => bump(v),
            Next::Shared(v) => bump(&mut v.borrow_mut()),
        };
        ((self.start + k) % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_alternates_from_the_start_and_shared_turns_are_one_sequence() {
        let mut own = Turns::own(1);
        let got: Vec<usize> = (0..4).map(|_| own.take(0, 2)).collect();
        assert_eq!(got, [1, 0, 1, 0]);
        // Another entry counts on its own, with its own number of variants.
        assert_eq!((own.take(1, 3), own.take(1, 3), own.take(0, 2)), (1, 2, 1));
        let mut a = Turns::shared(0);
        let mut b = a.clone();
        assert_eq!((a.take(0, 2), b.take(0, 2), b.take(0, 2), a.take(0, 2)), (0, 1, 0, 1));
    }
}
