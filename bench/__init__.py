"""herald's benchmark: `python -m bench` (or `herald bench`) starts its own stack and prints, in
one run, herald's throughput beside plain Celery's on the same Redis and the issue's targets.

One module per measurement; `bench.stack` starts and stops the processes; `bench.run` runs the
measurements in order; `bench.report` prints the table and keeps each run's JSON in
`bench/results/` for a later run to be compared with.
"""
