//! Pending call-backs, counted: at most [`MAX_PENDING`] at once and one
//! per number. A second request for a number that already waits merges
//! into the first (it keeps its place; nothing new is stored or dialled),
//! so nobody can fill the queues, the store or the dial-out budget with
//! call-backs. A call-back at a chosen time also takes a place in its
//! slot, of which there are only so many (the slot's agents, or its share
//! of the trunk, can serve so many). A [`Booking`] is given back when it
//! is dropped, however the call-back ends.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Call-backs pending at once, at most.
pub const MAX_PENDING: usize = 5_000;

/// Why a call-back was not booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This number already has a call-back waiting: merged into it.
    Duplicate,
    /// [`MAX_PENDING`] call-backs wait already, or the slot asked for is
    /// full.
    Full,
}

#[derive(Debug, Default)]
struct Held {
    numbers: HashSet<String>,
    /// Call-backs per slot (its start, Unix seconds).
    slots: HashMap<i64, u32>,
}

/// The numbers with a pending call-back.
#[derive(Debug, Clone, Default)]
pub struct Bookings(Arc<Mutex<Held>>);

/// A pending call-back's hold on its number (and slot).
#[derive(Debug)]
pub struct Booking {
    book: Bookings,
    number: String,
    slot: Option<i64>,
}

impl Drop for Booking {
    fn drop(&mut self) {
        if let Ok(mut b) = self.book.0.lock() {
            b.numbers.remove(&self.number);
            if let Some(slot) = self.slot {
                if let Some(n) = b.slots.get_mut(&slot) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        b.slots.remove(&slot);
                    }
                }
            }
        }
    }
}

impl Bookings {
    /// Books a call-back to `number`.
    pub fn book(&self, number: &str) -> Result<Booking, Refused> {
        self.book_at(number, None, 0).map(|(b, _)| b)
    }

    /// Books a call-back to `number`, in the slot starting at `slot` when
    /// there is one, of which at most `capacity` are booked. Gives the
    /// booking and how many the slot held before it (its turn in it).
    pub fn book_at(
        &self,
        number: &str,
        slot: Option<i64>,
        capacity: u32,
    ) -> Result<(Booking, u32), Refused> {
        let mut b = self.0.lock().map_err(|_| Refused::Full)?;
        if b.numbers.contains(number) {
            return Err(Refused::Duplicate);
        }
        if b.numbers.len() >= MAX_PENDING {
            return Err(Refused::Full);
        }
        let mut turn = 0;
        if let Some(at) = slot {
            let n = b.slots.entry(at).or_default();
            if *n >= capacity {
                return Err(Refused::Full);
            }
            turn = *n;
            *n += 1;
        }
        b.numbers.insert(number.to_string());
        Ok((
            Booking {
                book: self.clone(),
                number: number.to_string(),
                slot,
            },
            turn,
        ))
    }

    /// How many call-backs the slot starting at `slot` holds.
    pub fn in_slot(&self, slot: i64) -> u32 {
        self.0
            .lock()
            .map_or(0, |b| b.slots.get(&slot).copied().unwrap_or(0))
    }

    /// Call-backs pending now.
    pub fn pending(&self) -> usize {
        self.0.lock().map_or(0, |b| b.numbers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_number_and_given_back_when_dropped() {
        let b = Bookings::default();
        let first = b.book("0501234567").unwrap();
        assert_eq!(b.book("0501234567").unwrap_err(), Refused::Duplicate);
        let other = b.book("0507654321").unwrap();
        assert_eq!(b.pending(), 2);
        drop(first);
        assert!(b.book("0501234567").is_ok(), "free again, then dropped");
        drop(other);
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn a_slot_takes_so_many_and_frees_a_place_when_one_ends() {
        let b = Bookings::default();
        let (first, turn) = b.book_at("0501", Some(3600), 2).unwrap();
        assert_eq!(turn, 0);
        let (_second, turn) = b.book_at("0502", Some(3600), 2).unwrap();
        assert_eq!(turn, 1);
        assert_eq!(b.book_at("0503", Some(3600), 2).unwrap_err(), Refused::Full);
        assert_eq!(b.in_slot(3600), 2);
        // Another slot, and the call-back as soon as possible, still book.
        assert!(b.book_at("0503", Some(7200), 2).is_ok());
        assert!(b.book("0504").is_ok());
        drop(first);
        assert_eq!(b.in_slot(3600), 1);
        assert!(b.book_at("0505", Some(3600), 2).is_ok());
    }

    #[test]
    fn the_total_is_capped() {
        let b = Bookings::default();
        let held: Vec<_> = (0..MAX_PENDING)
            .map(|i| b.book(&i.to_string()).unwrap())
            .collect();
        assert_eq!(b.book("x").unwrap_err(), Refused::Full);
        drop(held);
        assert!(b.book("x").is_ok());
    }
}
