"""Studio's core domain, one module per concern."""

from .datasets import Dataset, DatasetImage, DatasetVersion, DatasetVersionItem, Image, Split
from .jobs import IngestFile, Job
from .projects import (
    Approach,
    Membership,
    Objective,
    ProblemStatement,
    Project,
    Role,
    SuccessCriterion,
    TaskType,
)

__all__ = [
    "Approach",
    "Dataset",
    "DatasetImage",
    "DatasetVersion",
    "DatasetVersionItem",
    "Image",
    "IngestFile",
    "Job",
    "Membership",
    "Objective",
    "ProblemStatement",
    "Project",
    "Role",
    "Split",
    "SuccessCriterion",
    "TaskType",
]
