"""Orchestration: the facade the handlers call, the worker that claims jobs, the pipeline it runs, uploads and
the JSON views of jobs."""
