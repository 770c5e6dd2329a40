"""The configuration examples (demo.toml, example.toml) ship inside the installed package as
`sync.configs`, so `stocksync demo` and `stocksync init` work from a plain `pip install`."""
