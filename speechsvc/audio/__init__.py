"""Audio: media types, container probing, PyAV decoding and channel selection."""
