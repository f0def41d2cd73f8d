//! Address assignment: every session gets its own address, from the pool or from the
//! user's secrets line; no address is ever given to two sessions at once.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The pool and the addresses in use (in the pool or fixed ones outside it).
#[derive(Debug, Clone)]
pub struct AddressPool {
    first: u32,
    last: u32,
    /// Every address in use, pool or not.
    used: BTreeSet<u32>,
    /// Where the next search starts, so released addresses are not reused at once.
    next: u32,
}

impl AddressPool {
    /// A pool of the addresses `first..=last`.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Self {
        let (first, last) = (u32::from(first), u32::from(last));
        Self {
            first,
            last,
            used: BTreeSet::new(),
            next: first,
        }
    }

    /// Whether `ip` lies in the pool.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip))
    }

    /// Addresses in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    /// The size of the pool.
    pub fn size(&self) -> usize {
        (self.last - self.first) as usize + 1
    }

    /// Takes a specific address (a user's fixed address); false if it is in use.
    pub fn take(&mut self, ip: Ipv4Addr) -> bool {
        self.used.insert(u32::from(ip))
    }

    /// Takes a free pool address that `allowed` accepts, round robin from the last one given.
    pub fn allocate(&mut self, allowed: impl Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
        let span = self.last - self.first + 1;
        for i in 0..span {
            let a = self.first + (self.next - self.first + i) % span;
            let ip = Ipv4Addr::from(a);
            if !self.used.contains(&a) && allowed(ip) {
                self.used.insert(a);
                self.next = if a == self.last { self.first } else { a + 1 };
                return Some(ip);
            }
        }
        None
    }

    /// Gives an address back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn never_twice_and_round_robin() {
        let mut p = AddressPool::new(ip("10.0.0.100"), ip("10.0.0.102"));
        assert_eq!(p.size(), 3);
        let a = p.allocate(|_| true).unwrap();
        let b = p.allocate(|_| true).unwrap();
        let c = p.allocate(|_| true).unwrap();
        assert_eq!(
            [a, b, c],
            [ip("10.0.0.100"), ip("10.0.0.101"), ip("10.0.0.102")]
        );
        assert_eq!(p.allocate(|_| true), None, "exhausted");
        p.release(b);
        assert_eq!(p.allocate(|_| true), Some(b));
        p.release(a);
        p.release(c);
        // Round robin: the search goes on after the last address given.
        assert_eq!(p.allocate(|_| true), Some(c));
    }

    #[test]
    fn fixed_addresses_and_filters() {
        let mut p = AddressPool::new(ip("10.0.0.100"), ip("10.0.0.199"));
        assert!(p.take(ip("10.0.0.150")));
        assert!(!p.take(ip("10.0.0.150")), "already in use");
        assert!(
            p.take(ip("192.168.7.7")),
            "fixed addresses outside the pool count too"
        );
        assert_eq!(p.in_use(), 2);
        let got = p.allocate(|a| a.octets()[3] >= 150).unwrap();
        assert_eq!(got, ip("10.0.0.151"));
        assert!(p.contains(got) && !p.contains(ip("192.168.7.7")));
    }
}
