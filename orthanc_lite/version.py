"""The version of orthanc_lite itself (the Orthanc version it emulates is in rest/system.py)."""

__version__ = "0.1.0"
