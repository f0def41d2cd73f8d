//! RADIUS client (RFC 2865, 2866, 3579, 5176): being written.
