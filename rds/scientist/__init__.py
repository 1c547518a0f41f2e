"""The data scientist's side: ``connect`` → ``Session`` → ``RemoteDataset`` → ``Request``."""

from rds.scientist.dataset import RemoteDataset
from rds.scientist.request import Request
from rds.scientist.session import Session, connect

__all__ = ["RemoteDataset", "Request", "Session", "connect"]
