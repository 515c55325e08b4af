//! Local stand-in for the Creem checkout API.
