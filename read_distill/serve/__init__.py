"""``read-distill serve-teacher``: an OpenAI-compatible server over a local causal LM.

``batcher`` collects concurrent requests into batches of the one batched generation
(``backends/hf.py``); ``app`` is the HTTP API (FastAPI + uvicorn, the ``serve`` extra).
"""
