"""Operations: health and metrics endpoints, structured logs, transcripts, deployment."""
