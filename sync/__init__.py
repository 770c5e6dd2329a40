"""stocksync: one shared stock pool per SKU, kept in step across selling platforms."""

__version__ = "0.1.0"
