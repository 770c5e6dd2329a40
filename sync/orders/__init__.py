"""Orders: which order lines explain a movement, and which orders an oversell falls on. Pure."""
