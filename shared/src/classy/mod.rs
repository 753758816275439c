//! The Classy API 2.0 client.
