"""Supporting documents ("porte-documents"): types, uploads, storage, review."""
