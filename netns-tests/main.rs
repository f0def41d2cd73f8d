//! Integration tests on real network namespaces with real pppd clients (being written).
