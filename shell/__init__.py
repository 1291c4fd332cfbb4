"""Shell functions and completion shipped with tykky (package data)."""
