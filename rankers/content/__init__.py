"""The candidate-content inventory behind the inserting arms: sources, connectors, runs and the health page.

See ``docs/content-pipeline.md``. Annotation, per-participant queues and the three inserting rankers are not
built yet.
"""
