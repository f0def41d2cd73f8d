//! The address pool: a contiguous range of IPv4 addresses handed to callers.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

/// The most addresses a pool may hold (a /16 network).
pub const MAX_POOL: u64 = 65536;

/// A contiguous range of addresses, both ends included.
///
/// Written as `"10.0.0.100-10.0.0.199"` or as a network `"10.0.0.128/25"`. A network's own
/// address and its broadcast address are left out of a network of /30 or larger (so
/// `10.0.0.128/25` gives `10.0.0.129`-`10.0.0.254`); a /31 gives both its addresses (RFC
/// 3021) and a /32 its single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool {
    /// The first address.
    pub first: Ipv4Addr,
    /// The last address (not before `first`).
    pub last: Ipv4Addr,
}

/// Why a pool could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// Neither `A.B.C.D-A.B.C.E` nor `A.B.C.D/N`.
    Syntax,
    /// The first address is after the last.
    Reversed,
    /// A network whose address has host bits set; holds the network meant.
    HostBits(Ipv4Addr, u8),
    /// More than [`MAX_POOL`] addresses; holds how many.
    TooLarge(u64),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax => {
                f.write_str("is not an address range; use \"A.B.C.D-A.B.C.E\" or \"A.B.C.D/N\"")
            }
            Self::Reversed => f.write_str("runs backwards: its first address is after its last"),
            Self::HostBits(net, len) => {
                write!(f, "is not a network address; did you mean \"{net}/{len}\"?")
            }
            Self::TooLarge(n) => {
                write!(f, "holds {n} addresses; a pool holds at most {MAX_POOL}")
            }
        }
    }
}

impl std::error::Error for PoolError {}

impl Pool {
    /// A pool from `first` to `last`, both included; `None` when `first` is after `last`.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Option<Self> {
        (first <= last).then_some(Self { first, last })
    }

    /// Whether `ip` belongs to the pool.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.first <= ip && ip <= self.last
    }

    /// How many addresses the pool holds (at least one).
    pub fn len(&self) -> usize {
        (u32::from(self.last) - u32::from(self.first)) as usize + 1
    }

    /// Always false: a pool holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The addresses, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Ipv4Addr> + Clone + use<> {
        self.into_iter()
    }

    /// Whether the pool shares an address with the range `first..=last`.
    pub fn overlaps(&self, first: Ipv4Addr, last: Ipv4Addr) -> bool {
        self.first <= last && first <= self.last
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for Pool {
    type Err = PoolError;

    fn from_str(s: &str) -> Result<Self, PoolError> {
        let s = s.trim();
        let (first, last) = if let Some((a, b)) = s.split_once('-') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| PoolError::Syntax)?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| PoolError::Syntax)?;
            (a, b)
        } else if let Some((a, n)) = s.split_once('/') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| PoolError::Syntax)?;
            let n = n.trim();
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PoolError::Syntax);
            }
            let len: u8 = n.parse().map_err(|_| PoolError::Syntax)?;
            if len > 32 {
                return Err(PoolError::Syntax);
            }
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            let net = u32::from(a) & mask;
            if net != u32::from(a) {
                return Err(PoolError::HostBits(Ipv4Addr::from(net), len));
            }
            let broadcast = net | !mask;
            if len <= 30 {
                (Ipv4Addr::from(net + 1), Ipv4Addr::from(broadcast - 1))
            } else {
                (Ipv4Addr::from(net), Ipv4Addr::from(broadcast))
            }
        } else {
            return Err(PoolError::Syntax);
        };
        let pool = Self::new(first, last).ok_or(PoolError::Reversed)?;
        let n = u64::from(u32::from(pool.last) - u32::from(pool.first)) + 1;
        if n > MAX_POOL {
            return Err(PoolError::TooLarge(n));
        }
        Ok(pool)
    }
}

impl IntoIterator for &Pool {
    type Item = Ipv4Addr;
    type IntoIter = core::iter::Map<core::ops::RangeInclusive<u32>, fn(u32) -> Ipv4Addr>;

    fn into_iter(self) -> Self::IntoIter {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from as fn(u32) -> Ipv4Addr)
    }
}
