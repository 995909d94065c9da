"""Small shared helpers: hashing, atomic file writes, run metadata."""
