"""sftlens.experiments."""
