//! The HTTP client: one connection per VU per origin, no pool, so the number of open connections
//! is exactly what the plan says (a pooled client would hide it, and multiplex HTTP/2 onto one).

mod conn;
pub mod debug;
pub mod decode;
pub mod h1;

pub use conn::{classify_hyper, Connection, Connector, H2Conn, ReqBody};
pub use h1::RawHeaders;
