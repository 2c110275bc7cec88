"""Data drift between a baseline summary and a target table: fast, streamed, with FDR control.

The public names live in their modules: ``summaries.summarize`` builds a baseline summary once,
``engine.measure_drift`` compares a target against it.
"""
