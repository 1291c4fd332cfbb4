"""Scripts run inside build containers, shipped as package data."""
