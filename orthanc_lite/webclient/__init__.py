"""Outgoing HTTP: sessions towards Orthanc peers and DICOMweb servers (the only package that uses aiohttp's client).

Entry layers (rest/, dicomweb/) and jobs/ use it; services/ never does (STYLE: services import no aiohttp).
"""
