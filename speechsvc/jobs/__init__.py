"""Jobs: the job model, the pipeline and the worker that runs it."""
