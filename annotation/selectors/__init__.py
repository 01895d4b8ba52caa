"""The annotation app's queries, one module per concern, each scoped to the user.

- ``curation``: embeddings, clusters, duplicates, outliers, checkpoints (the quality
  filters on images are studio.selectors.quality_filters_from_params)
- ``labels``: label classes, annotations and their revisions, a member's work
- ``queues``: queues and their tasks, returned work, honeypot candidates, review lists
"""
