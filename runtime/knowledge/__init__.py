"""Knowledge: documents in, cited passages out.

Ports (``embeddings.Embedder``, ``sparse.SparseEncoder``, ``store.VectorStore``) with adapters beside
them, named by what backs them; ``backends.py`` is the one place that picks adapters. Ingestion,
retrieval, answers and evaluation only see the ports (docs/knowledge.md).
"""
