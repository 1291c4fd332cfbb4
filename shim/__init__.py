"""The runtime launcher, shipped as data and copied into every installation."""
