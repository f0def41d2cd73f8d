//! The SIP bridge (issue 8): being written. Sans-IO SIP messages, digest authentication, registrar bindings and the dialplan.
