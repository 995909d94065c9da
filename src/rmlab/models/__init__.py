"""Model loading (hub id, local dir, wheel-shipped files), fingerprints and chat formatting."""
