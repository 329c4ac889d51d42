"""sftlens.trace_tagger."""
