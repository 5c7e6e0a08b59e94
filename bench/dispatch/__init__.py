"""Dispatch-overhead benchmark: framequeue on each backend vs Celery 5 and Dramatiq with a no-op job.

`python -m bench.dispatch.run` runs it all and writes bench/results/dispatch.{md,json}.
"""
