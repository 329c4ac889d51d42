"""sftlens.train."""
