"""Jobs: the durable SQLite store, the pipeline and the worker that runs it."""
