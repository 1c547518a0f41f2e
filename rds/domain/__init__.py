"""The data owner's side: ``Domain``, publishing, the private store, requests, serving."""

from rds.domain.domain import Credentials, Domain
from rds.domain.policy import Policy
from rds.domain.requests import OwnerRequest, RunPreview

__all__ = ["Credentials", "Domain", "OwnerRequest", "Policy", "RunPreview"]
