//! Integration tests on real network namespaces with real pppd clients (being written).

mod aaa;
mod daemon;
pub(crate) mod demo_run;
mod interop;
mod modem_calls;
mod nasctl;
mod port_lifecycle;
mod radius;
mod rig_smoke;
mod scale;
mod sip;
mod sip_bench_run;
mod sip_ppp;
mod sip_rig;
mod support;
mod sys_net;
mod vmodem_tests;
