//! Reports: how results are shown. Knows summaries and intervals, never sockets.

pub mod terminal;
