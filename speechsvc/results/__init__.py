"""Results: the canonical JSON document and the formats rendered from it."""
