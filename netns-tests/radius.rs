//! RADIUS against a real FreeRADIUS: being written.
