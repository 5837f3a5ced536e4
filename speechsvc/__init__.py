"""speechsvc: self-hosted speech-to-text for telephony recordings."""

__version__ = "0.1.0"
