//! Integration tests on real network namespaces with real pppd clients (being written).

mod aaa;
mod daemon;
mod interop;
mod modem_calls;
mod port_lifecycle;
mod radius;
mod rig_smoke;
mod support;
mod sys_net;
mod vmodem_tests;
