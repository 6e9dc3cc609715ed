"""Loaded at start-up by every Python process whose PYTHONPATH holds this folder (the workers of
``bench/symbolic_spans.py``): when NNLAB_SPANS names a file, the spans of the symbolic search are
appended to it (:mod:`job_spans`). A tracer that cannot be installed stops the process: a timeline
without a worker's spans would read as an idle worker."""
import os

if os.environ.get("NNLAB_SPANS"):
    import job_spans

    job_spans.install()
