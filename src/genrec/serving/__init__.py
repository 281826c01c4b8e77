"""Serving a trained run over HTTP (`genrec serve`): request batching (:mod:`.batching`),
the request and response bodies (:mod:`.schemas`), the body and token checks
(:mod:`.middleware`), the error shape and status mapping (:mod:`.http_errors`) and the
app factory with its endpoints (:mod:`.app`).

The Python entry point is :class:`genrec.Recommender` (``genrec/api.py``), and the live
catalogue and its persisted changes are the library's (``genrec.data.live_catalogue``,
owned by the GenRec recommender); this package only serves them. Importing it does not
import torch or FastAPI.
"""
