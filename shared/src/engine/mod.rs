//! The sync engine, written once against the ports.
