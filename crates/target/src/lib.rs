//! The built-in simulated system: a real HTTP server whose capacity is known by construction.
