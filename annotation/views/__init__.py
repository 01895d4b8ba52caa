"""The annotation app's pages, one module per concern (routes in annotation/urls.py):

- ``curation``: the Curate page (map, clusters, quality filters), duplicates, outliers,
  embedding a version
- ``images``: one image with its annotations and the images most like it
- ``labels``: the label schema (label classes)
- ``queues``: the queue list, "next task", honeypots
- ``canvas``: a task on the annotation canvas
- ``review``: work waiting for review, the canvas in review mode, consensus merges
- ``quality``: a queue's stats (annotators, agreement, honeypot scores)
- ``preannotate``: batch pre-annotation of a queue's images
- ``exchange``: a version's export and import
"""
