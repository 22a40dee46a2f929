//! The asynchronous MySQL mirror (a later issue). It will follow the durable change cursor
//! (`state_machine::apply::changes_since`) from the last index it stored in MySQL, so it can
//! resume after any restart or leader change without losing a change. Nothing here yet.
