"""Inference runtime: compute dtype (:mod:`.precision`), compilation (:mod:`.compile`), the options every
pipeline shares (:mod:`.inference`) and the thread count (:mod:`.threads`).

Nothing is imported here, so that :func:`sara.runtime.threads.set_passive_wait` can run before torch loads.
"""
