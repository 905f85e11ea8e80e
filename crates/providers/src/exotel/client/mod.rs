//! The Exotel v1 REST client.
