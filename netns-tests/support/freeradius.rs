//! FreeRADIUS started from its own config directory: being written.
