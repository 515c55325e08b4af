//! Verifying what Creem sends back: redirect signatures and webhook signatures.
