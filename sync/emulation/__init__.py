"""Emulated platforms: stateful HTTP servers on loopback that follow the platform documents, for
tests, benchmarks and `stocksync demo`."""
