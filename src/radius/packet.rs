//! The RADIUS packet: a zero-copy checked view ([`Packet`]), its attribute iterator and a
//! builder ([`Builder`]). Pure and panic-free on any input (RFC 2865 section 3).

use core::fmt;

/// The fixed header: Code, Identifier, Length, Authenticator.
pub const HEADER_LEN: usize = 20;
/// The largest packet RFC 2865 allows.
pub const MAX_PACKET_LEN: usize = 4096;
/// The largest attribute value (the length octet covers type and length too).
pub const MAX_ATTR_VALUE_LEN: usize = 253;

/// A RADIUS packet code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 1 (RFC 2865).
    AccessRequest,
    /// 2 (RFC 2865).
    AccessAccept,
    /// 3 (RFC 2865).
    AccessReject,
    /// 4 (RFC 2866).
    AccountingRequest,
    /// 5 (RFC 2866).
    AccountingResponse,
    /// 11 (RFC 2865).
    AccessChallenge,
    /// 12 (RFC 5997).
    StatusServer,
    /// 40 (RFC 5176).
    DisconnectRequest,
    /// 41 (RFC 5176).
    DisconnectAck,
    /// 42 (RFC 5176).
    DisconnectNak,
    /// 43 (RFC 5176).
    CoaRequest,
    /// 44 (RFC 5176).
    CoaAck,
    /// 45 (RFC 5176).
    CoaNak,
    /// Any other code, kept as is.
    Other(u8),
}

impl From<u8> for Code {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::AccessRequest,
            2 => Self::AccessAccept,
            3 => Self::AccessReject,
            4 => Self::AccountingRequest,
            5 => Self::AccountingResponse,
            11 => Self::AccessChallenge,
            12 => Self::StatusServer,
            40 => Self::DisconnectRequest,
            41 => Self::DisconnectAck,
            42 => Self::DisconnectNak,
            43 => Self::CoaRequest,
            44 => Self::CoaAck,
            45 => Self::CoaNak,
            o => Self::Other(o),
        }
    }
}

impl From<Code> for u8 {
    fn from(c: Code) -> u8 {
        match c {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::DisconnectRequest => 40,
            Code::DisconnectAck => 41,
            Code::DisconnectNak => 42,
            Code::CoaRequest => 43,
            Code::CoaAck => 44,
            Code::CoaNak => 45,
            Code::Other(o) => o,
        }
    }
}

/// Why bytes are not a well-formed RADIUS packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer than 20 bytes, or fewer than the Length field says.
    #[error("truncated packet")]
    Truncated,
    /// The Length field is below 20 or above 4096.
    #[error("bad length field")]
    BadLength,
    /// An attribute's length is below 2 or runs past the packet.
    #[error("malformed attribute")]
    BadAttribute,
}

/// A checked view of a RADIUS packet: the header and attribute list are known to be
/// well-formed; bytes past the Length field (padding) are ignored.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks `buf` and returns a view of the packet it holds.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ParseError> {
        let Some(hdr) = buf.get(..HEADER_LEN) else {
            return Err(ParseError::Truncated);
        };
        let len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) {
            return Err(ParseError::BadLength);
        }
        let bytes = buf.get(..len).ok_or(ParseError::Truncated)?;
        let mut rest = &bytes[HEADER_LEN..];
        while !rest.is_empty() {
            let alen = match rest.get(1) {
                Some(&l) if l >= 2 => usize::from(l),
                _ => return Err(ParseError::BadAttribute),
            };
            rest = rest.get(alen..).ok_or(ParseError::BadAttribute)?;
        }
        Ok(Self { bytes })
    }

    /// The packet's code.
    pub fn code(&self) -> Code {
        Code::from(self.bytes[0])
    }

    /// The Identifier.
    pub fn identifier(&self) -> u8 {
        self.bytes[1]
    }

    /// The Authenticator field.
    pub fn authenticator(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.bytes[4..HEADER_LEN]);
        a
    }

    /// The packet's bytes up to its Length (without padding).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The attributes, in order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            rest: &self.bytes[HEADER_LEN..],
            offset: HEADER_LEN,
        }
    }

    /// The value of the first attribute of type `ty`.
    pub fn first(&self, ty: u8) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.ty == ty).map(|a| a.value)
    }
}

impl fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Attribute values may be hidden passwords: show only types and lengths.
        let attrs: Vec<(u8, usize)> = self.attributes().map(|a| (a.ty, a.value.len())).collect();
        f.debug_struct("Packet")
            .field("code", &self.code())
            .field("id", &self.identifier())
            .field("attrs", &attrs)
            .finish()
    }
}

/// One attribute of a checked packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The Type octet.
    pub ty: u8,
    /// The value (without type and length).
    pub value: &'a [u8],
    /// Where the value starts in the packet.
    pub offset: usize,
}

impl<'a> Attribute<'a> {
    /// The value as a 32-bit integer, if it is exactly 4 bytes.
    pub fn as_u32(&self) -> Option<u32> {
        as_u32(self.value)
    }

    /// For a Vendor-Specific attribute (26): the Vendor-Id and the vendor's data.
    pub fn vendor(&self) -> Option<(u32, &'a [u8])> {
        if self.ty != super::attr::VENDOR_SPECIFIC {
            return None;
        }
        let id = as_u32(self.value.get(..4)?)?;
        Some((id, &self.value[4..]))
    }
}

/// A 4-byte big-endian value.
pub fn as_u32(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}

/// Iterator over a checked packet's attributes.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;
    fn next(&mut self) -> Option<Attribute<'a>> {
        let ty = *self.rest.first()?;
        let len = usize::from(*self.rest.get(1)?);
        // The packet was checked; stop quietly rather than trust a bad length anyway.
        let value = self.rest.get(2..len)?;
        let attr = Attribute {
            ty,
            value,
            offset: self.offset + 2,
        };
        self.rest = &self.rest[len..];
        self.offset += len;
        Some(attr)
    }
}

/// Why a packet could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// An attribute value is longer than 253 bytes.
    #[error("attribute {0} value too long")]
    ValueTooLong(u8),
    /// The packet would exceed 4096 bytes.
    #[error("packet too long")]
    PacketTooLong,
}

/// Builds a packet: header first, then attributes in order. The authenticator is set by the
/// caller, or computed by the signing functions in [`super::crypto`].
#[derive(Clone)]
pub struct Builder {
    buf: Vec<u8>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("len", &self.buf.len())
            .finish()
    }
}

impl Builder {
    /// A packet with this code, identifier and authenticator, and no attributes yet.
    pub fn new(code: Code, id: u8, authenticator: [u8; 16]) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.push(code.into());
        buf.push(id);
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&authenticator);
        Self { buf }
    }

    /// Appends an attribute with a raw value.
    pub fn attr(&mut self, ty: u8, value: &[u8]) -> Result<&mut Self, BuildError> {
        if value.len() > MAX_ATTR_VALUE_LEN {
            return Err(BuildError::ValueTooLong(ty));
        }
        if self.buf.len() + 2 + value.len() > MAX_PACKET_LEN {
            return Err(BuildError::PacketTooLong);
        }
        self.buf.push(ty);
        self.buf.push((value.len() + 2) as u8);
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a 32-bit integer attribute.
    pub fn u32(&mut self, ty: u8, v: u32) -> Result<&mut Self, BuildError> {
        self.attr(ty, &v.to_be_bytes())
    }

    /// Appends a text attribute.
    pub fn text(&mut self, ty: u8, v: &str) -> Result<&mut Self, BuildError> {
        self.attr(ty, v.as_bytes())
    }

    /// Appends a Vendor-Specific attribute (26) carrying `data` for `vendor_id`.
    pub fn vendor(&mut self, vendor_id: u32, data: &[u8]) -> Result<&mut Self, BuildError> {
        let mut v = Vec::with_capacity(4 + data.len());
        v.extend_from_slice(&vendor_id.to_be_bytes());
        v.extend_from_slice(data);
        self.attr(super::attr::VENDOR_SPECIFIC, &v)
    }

    /// Appends a zeroed Message-Authenticator (80) to be filled in when signing.
    pub fn message_authenticator(&mut self) -> Result<&mut Self, BuildError> {
        self.attr(super::attr::MESSAGE_AUTHENTICATOR, &[0; 16])
    }

    /// The packet with its Length field set (not yet signed).
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}
