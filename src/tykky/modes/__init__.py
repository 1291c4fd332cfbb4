"""Modes fill a build tree: pip, conda, wrap-container, wrap-install."""
