"""HTTP dialects, one module each, all thin layers over the job store and pipeline."""
