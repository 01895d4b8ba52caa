"""The annotation app's queries, one module per concern, each scoped to the user.

- ``curation``: embeddings, clusters, duplicates, outliers, quality filters, checkpoints
- ``labels``: label classes, annotations and their revisions, a member's work
- ``queues``: queues and their tasks, returned work, honeypot candidates, review lists
"""
