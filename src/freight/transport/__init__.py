"""The only client code that touches the network: one HTTP client per registry, with auth."""
