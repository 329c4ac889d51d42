"""sftlens.probes."""
