"""One module per command; each exposes plain functions taking the frozen Config."""
