"""Live streams: audio arriving over a socket, cut into utterances by a streaming VAD per channel and decoded
by the same batched decoder as the file jobs, ahead of them (issue 21; the Deepgram protocol in api/live.py)."""
