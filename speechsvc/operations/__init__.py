"""Operations: metrics, the structured log line, the disk guard and malloc tuning."""
