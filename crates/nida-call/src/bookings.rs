//! Pending call-backs, counted: at most [`MAX_PENDING`] at once and one
//! per number. A second request for a number that already waits merges
//! into the first (it keeps its place; nothing new is stored or dialled),
//! so nobody can fill the queues, the store or the dial-out budget with
//! call-backs. A [`Booking`] is given back when it is dropped, however the
//! call-back ends.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Call-backs pending at once, at most.
pub const MAX_PENDING: usize = 5_000;

/// Why a call-back was not booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This number already has a call-back waiting: merged into it.
    Duplicate,
    /// [`MAX_PENDING`] call-backs wait already.
    Full,
}

/// The numbers with a pending call-back.
#[derive(Debug, Clone, Default)]
pub struct Bookings(Arc<Mutex<HashSet<String>>>);

/// A pending call-back's hold on its number.
#[derive(Debug)]
pub struct Booking {
    book: Bookings,
    number: String,
}

impl Drop for Booking {
    fn drop(&mut self) {
        if let Ok(mut b) = self.book.0.lock() {
            b.remove(&self.number);
        }
    }
}

impl Bookings {
    /// Books a call-back to `number`.
    pub fn book(&self, number: &str) -> Result<Booking, Refused> {
        let mut b = self.0.lock().map_err(|_| Refused::Full)?;
        if b.contains(number) {
            return Err(Refused::Duplicate);
        }
        if b.len() >= MAX_PENDING {
            return Err(Refused::Full);
        }
        b.insert(number.to_string());
        Ok(Booking {
            book: self.clone(),
            number: number.to_string(),
        })
    }

    /// Call-backs pending now.
    pub fn pending(&self) -> usize {
        self.0.lock().map_or(0, |b| b.len())
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
