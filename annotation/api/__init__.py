"""The annotation app's REST API, one module per concern (like studio/api/):

- ``curation``: embeddings, similar images, clusters, duplicates, outliers, the map, curate
- ``labels``: label classes, annotations, their history and restore
- ``queues``: queues, next task, submit, skip, and review decisions
- ``quality``: queue stats, honeypots, consensus, the project's quality summary
- ``preannotate``: draft masks from a box or clicks, tag propagation, batch jobs
- ``exchange``: export and import in the annotation formats, the format list
"""
