"""Browser pages (templates + htmx), one module per concern (routes in studio/ui_urls.py).

Each view calls selectors to read and services to write. ``base`` holds what every app's
pages build on (``member_view``, ``require_allowed``, ``form_error``), re-exported here.

- ``projects``: projects, objectives, the problem statement, members
- ``datasets``: datasets, the image grid, snapshots, metadata, uploads
- ``jobs``: the job list, a job's page, cancel and retry
- ``confirm``: confirmation steps for actions that remove or hide data
"""

from studio.views.base import form_error, member_view, require_allowed

__all__ = ["form_error", "member_view", "require_allowed"]
