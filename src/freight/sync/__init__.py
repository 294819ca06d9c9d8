"""`freight sync`: mirror lists, filters, name rewriting, bundles across an air gap."""
