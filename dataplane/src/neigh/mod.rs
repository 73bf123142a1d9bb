//! Neighbour resolution.
