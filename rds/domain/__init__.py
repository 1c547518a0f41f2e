"""The data owner's side: ``Domain``, its requests, the review desk, serving."""

from rds.domain.domain import Credentials, Domain
from rds.domain.requests import OwnerRequest, RunPreview
from rds.worker.policy import Policy

__all__ = ["Credentials", "Domain", "OwnerRequest", "Policy", "RunPreview"]
