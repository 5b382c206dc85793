//! stampede: a load-testing tool that ends in an answer.
