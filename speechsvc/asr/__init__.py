"""Speech recognition: the Transcriber seam, the faster-whisper engine and the model registry."""
