"""Benchmarks of orthanc_lite against real Orthanc (issue 2 item 12; `python -m bench`, `make bench`).

Layout:
  __main__.py  the harness: generate/load the store, start both servers, run the sections, print the table, write JSON
  store.py     the synthetic store (N patients x studies x series x instances of small CT images), cached in bench/.cache/
  servers.py   start orthanc_lite / real Orthanc on free ports with fresh storage; RSS and CPU of the server process
  ingest.py    REST upload throughput with k concurrent clients (aiohttp)
  reads.py     list/expand latency, single-resource latency, /changes paging
  report.py    figures -> table rows with ratios and targets
  sections.py  optional sections written by other issues, found at run time

Adding a section: write `bench/<name>.py` exposing `async def run(...) -> dict` and add its name to
`sections.OPTIONAL_SECTIONS`. It is called once both servers hold the whole store; its parameters are filled by name
from `sections.Context` (base_url_lite, base_url_orthanc, dicom_port_lite, dicom_port_orthanc, aet_lite, aet_orthanc,
quick, workdir, ...). Whatever it returns is stored under its name in the JSON results.
"""
