"""Loaded at start-up by every Python process whose PYTHONPATH holds this folder (the workers of
``bench/symbolic_timeline.py``): when NNLAB_TIMELINE names a file, the spans of the symbolic search
are appended to it (:mod:`timeline_spans`)."""
import os

if os.environ.get("NNLAB_TIMELINE"):
    try:
        import timeline_spans

        timeline_spans.install()
    except Exception as e:  # a broken tracer must never break the worker
        import sys

        print(f"timeline: not installed ({e})", file=sys.stderr)
