"""Whisper as three ONNX graphs, written node by node with onnx.helper from the CTranslate2 weights.

- encoder: log-mel [1, 80, T] (any even T ≤ 3000) → the cross-attention keys and values of every
  decoder layer. The positional table is sliced to the utterance's length, so a 2 s command costs a
  2 s encoder, not a 30 s one; computing the cross keys/values here means the decoder never redoes
  them per token.
- decoder: token embeddings [B, L, D] plus the self-attention cache of P earlier tokens → the
  final hidden states [B, L, D] and the grown cache. P = 0 is the first call. The causal mask and
  the position offset come from the cache's own shape, so there is no position input to get wrong.
- head: hidden [N, D] → logits over the whole vocabulary (the tied embedding matrix).

Token embedding lookup is not in a graph: the runner reads rows of an int8 table it memory-maps,
which keeps the 20-26 M-parameter table out of resident memory: only the rows of tokens actually
used become resident.

Sizes (width D, heads, layers, FFN, vocabulary) are read off the weights (`whisper_dims`), so the
same builder serves tiny.en (384 wide, 4 + 4 layers) and base (512, 6 + 6, multilingual).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from device.errors import ModelError
from models.asr.ct2 import Ct2Model

OPSET = 17
N_MELS = 80
MAX_SOURCE = 1500
MAX_TARGET = 448
LN_EPS = 1e-5
GELU = 3
"""CTranslate2's activation code for exact (erf) GELU, the one Whisper uses."""
MAX_LAYERS = 64


@dataclass(frozen=True, slots=True)
class Dims:
    """A Whisper model's sizes, as its weights say."""

    d_model: int
    heads: int
    encoder_layers: int
    decoder_layers: int
    ffn: int
    vocab: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads


def _count_layers(model: Ct2Model, stack: str) -> int:
    layers = 0
    while f"{stack}/layer_{layers}/ffn/linear_0/weight" in model.variables and layers < MAX_LAYERS:
        layers += 1
    if not layers:
        raise ModelError("model-corrupt", f"{model.path}: no {stack} layers")
    return layers


def whisper_dims(model: Ct2Model) -> Dims:
    """The sizes of these weights; refuses anything that isn't Whisper's shape and flavour."""
    if model.spec != "WhisperSpec":
        raise ModelError("model-corrupt", f"{model.path}: spec {model.spec!r} is not WhisperSpec")
    heads = model.scalar("encoder/num_heads")
    flags = {
        "decoder/pre_norm": 1, "decoder/scale_embeddings": 0, "decoder/start_from_zero_embedding": 0,
        "decoder/alibi": 0, "decoder/activation": GELU, "decoder/num_heads": heads,
    }
    for name, want in flags.items():
        if model.scalar(name) != want:
            raise ModelError("model-corrupt", f"{model.path}: {name} is {model.scalar(name)}, expected {want}")
    vocab, d_model = model.get("decoder/embeddings/weight").shape
    if heads < 1 or d_model % heads:
        raise ModelError("model-corrupt", f"{model.path}: width {d_model} doesn't split into {heads} heads")
    ffn = model.get("encoder/layer_0/ffn/linear_0/weight").shape[0]
    dims = Dims(d_model, heads, _count_layers(model, "encoder"), _count_layers(model, "decoder"), ffn, vocab)
    # 128 mel bins (large-v3) would need another front end: refuse rather than build a deaf model.
    model.get("encoder/conv1/weight", (d_model, N_MELS, 3))
    model.get("encoder/position_encodings/encodings", (MAX_SOURCE, d_model))
    model.get("decoder/position_encodings/encodings", (MAX_TARGET, d_model))
    return dims


@dataclass
class _Graph:
    """Accumulates nodes and initializers; names are made unique by a counter."""

    weights: Ct2Model
    dims: Dims
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    count: int = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def ints(self, values: list[int], hint: str = "shape") -> str:
        return self.const(np.array(values, dtype=np.int64), hint)

    def weight(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self.weights.get(name, shape)

    def linear(self, x: str, prefix: str, n_in: int, n_out: int, rows: slice | None = None) -> str:
        """x @ W^T + b with W stored transposed as [in, out], the layout the quantizer expects."""
        w = self.weights.get(f"{prefix}/weight")
        b = self.weights.get(f"{prefix}/bias")
        if rows is not None:
            w, b = w[rows], b[rows]
        if w.shape != (n_out, n_in) or b.shape != (n_out,):
            raise ModelError("model-corrupt", f"{self.weights.path}: {prefix} has shape {w.shape}, expected {(n_out, n_in)}")
        y = self.op("MatMul", [x, self.const(w.T, prefix.replace("/", ".") + ".w")], "mm")
        return self.op("Add", [y, self.const(b, prefix.replace("/", ".") + ".b")], "lin")

    def layer_norm(self, x: str, prefix: str) -> str:
        gamma = self.const(self.weight(f"{prefix}/gamma", (self.dims.d_model,)), "ln.g")
        beta = self.const(self.weight(f"{prefix}/beta", (self.dims.d_model,)), "ln.b")
        return self.op("LayerNormalization", [x, gamma, beta], "ln", axis=-1, epsilon=LN_EPS)

    def gelu(self, x: str) -> str:
        # Exact GELU spelled out (opset 17 has no Gelu op); ORT fuses this pattern into one kernel.
        scaled = self.op("Div", [x, self.const(np.array(np.sqrt(2.0), np.float32), "sqrt2")])
        erf = self.op("Erf", [scaled])
        one_plus = self.op("Add", [erf, self.const(np.array(1.0, np.float32), "one")])
        half_x = self.op("Mul", [x, self.const(np.array(0.5, np.float32), "half")])
        return self.op("Mul", [half_x, one_plus], "gelu")

    def heads(self, x: str, transpose_key: bool = False) -> str:
        """[B, L, D] → [B, H, L, D/H] (or [B, H, D/H, L] for keys, so scores need no transpose)."""
        split = self.op("Reshape", [x, self.ints([0, -1, self.dims.heads, self.dims.head_dim])])
        return self.op("Transpose", [split], perm=[0, 2, 3, 1] if transpose_key else [0, 2, 1, 3])

    def merge_heads(self, x: str) -> str:
        t = self.op("Transpose", [x], perm=[0, 2, 1, 3])
        return self.op("Reshape", [t, self.ints([0, -1, self.dims.d_model])])

    def attend(self, q: str, k_t: str, v: str, mask: str | None) -> str:
        scores = self.op("MatMul", [q, k_t])
        scores = self.op("Mul", [scores, self.const(np.array(self.dims.head_dim**-0.5, np.float32), "scale")])
        if mask is not None:
            scores = self.op("Add", [scores, mask])
        probs = self.op("Softmax", [scores], axis=-1)
        return self.merge_heads(self.op("MatMul", [probs, v]))

    def ffn(self, x: str, prefix: str) -> str:
        h = self.layer_norm(x, f"{prefix}/layer_norm")
        d, ffn = self.dims.d_model, self.dims.ffn
        h = self.gelu(self.linear(h, f"{prefix}/linear_0", d, ffn))
        return self.op("Add", [x, self.linear(h, f"{prefix}/linear_1", ffn, d)], "res")

    def projections(self, x: str, prefix: str, count: int) -> list[str]:
        """The `count` projections of a fused linear layer (q, k, v or k, v), in CTranslate2's order."""
        d = self.dims.d_model
        return [self.linear(x, prefix, d, d, slice(i * d, (i + 1) * d)) for i in range(count)]

    def model(self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="voxhome")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _float(name: str, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def cross_names(layer: int) -> tuple[str, str]:
    return f"cross_k_{layer}", f"cross_v_{layer}"


def cache_names(layer: int, kind: str) -> tuple[str, str]:
    """(past, present) names of a layer's self-attention cache, kind 'k' or 'v'."""
    return f"past_{kind}_{layer}", f"present_{kind}_{layer}"


def build_encoder(weights: Ct2Model) -> onnx.ModelProto:
    dims = whisper_dims(weights)
    g = _Graph(weights, dims)
    d, h_, hd = dims.d_model, dims.heads, dims.head_dim
    conv1_w = g.const(g.weight("encoder/conv1/weight", (d, N_MELS, 3)), "conv1.w")
    conv1_b = g.const(g.weight("encoder/conv1/bias", (d,)), "conv1.b")
    conv2_w = g.const(g.weight("encoder/conv2/weight", (d, d, 3)), "conv2.w")
    conv2_b = g.const(g.weight("encoder/conv2/bias", (d,)), "conv2.b")
    x = g.gelu(g.op("Conv", ["mel", conv1_w, conv1_b], pads=[1, 1], strides=[1], kernel_shape=[3]))
    x = g.gelu(g.op("Conv", [x, conv2_w, conv2_b], pads=[1, 1], strides=[2], kernel_shape=[3]))
    x = g.op("Transpose", [x], perm=[0, 2, 1])  # [1, S, D]
    # Slice the positional table to S frames: the encoder runs on the utterance, not on 30 s.
    frames = g.op("Slice", [g.op("Shape", [x]), g.ints([1]), g.ints([2])])
    pos_table = g.const(g.weight("encoder/position_encodings/encodings", (MAX_SOURCE, d)), "enc.pos")
    x = g.op("Add", [x, g.op("Slice", [pos_table, g.ints([0]), frames, g.ints([0])])])
    for i in range(dims.encoder_layers):
        p = f"encoder/layer_{i}"
        h = g.layer_norm(x, f"{p}/self_attention/layer_norm")
        q, k, v = g.projections(h, f"{p}/self_attention/linear_0", 3)
        a = g.attend(g.heads(q), g.heads(k, transpose_key=True), g.heads(v), None)
        x = g.op("Add", [x, g.linear(a, f"{p}/self_attention/linear_1", d, d)], "res")
        x = g.ffn(x, f"{p}/ffn")
    enc = g.layer_norm(x, "encoder/layer_norm")
    outputs = []
    for i in range(dims.decoder_layers):
        k_name, v_name = cross_names(i)
        k, v = g.projections(enc, f"decoder/layer_{i}/attention/linear_1", 2)
        g.nodes.append(helper.make_node("Identity", [g.heads(k, transpose_key=True)], [k_name]))
        g.nodes.append(helper.make_node("Identity", [g.heads(v)], [v_name]))
        outputs += [_float(k_name, [1, h_, hd, "S"]), _float(v_name, [1, h_, "S", hd])]
    return g.model([_float("mel", [1, N_MELS, "T"])], outputs, "whisper_encoder")


def build_decoder(weights: Ct2Model) -> onnx.ModelProto:
    dims = whisper_dims(weights)
    g = _Graph(weights, dims)
    d, h_, hd = dims.d_model, dims.heads, dims.head_dim
    past0 = cache_names(0, "k")[0]
    # P = tokens already in the cache, L = tokens in this call; both read off the inputs' shapes.
    past_len = g.op("Slice", [g.op("Shape", [past0]), g.ints([2]), g.ints([3])])
    new_len = g.op("Slice", [g.op("Shape", ["embeddings"]), g.ints([1]), g.ints([2])])
    total = g.op("Add", [past_len, new_len])
    pos_table = g.const(g.weight("decoder/position_encodings/encodings", (MAX_TARGET, d)), "dec.pos")
    x = g.op("Add", ["embeddings", g.op("Slice", [pos_table, past_len, total, g.ints([0])])])
    # Causal mask [L, P+L]: query row i (absolute position P+i) sees keys 0..P+i.
    zero = g.const(np.array(0, np.int64), "zero")
    one = g.const(np.array(1, np.int64), "one")
    p_scalar = g.op("Squeeze", [past_len, g.ints([0])])
    t_scalar = g.op("Squeeze", [total, g.ints([0])])
    rows = g.op("Unsqueeze", [g.op("Range", [p_scalar, t_scalar, one]), g.ints([1])])
    cols = g.op("Unsqueeze", [g.op("Range", [zero, t_scalar, one]), g.ints([0])])
    blocked = g.op("Greater", [cols, rows])
    mask = g.op("Where", [blocked, g.const(np.array(-1e9, np.float32), "neg"), g.const(np.array(0.0, np.float32), "zf")])
    inputs = [_float("embeddings", ["B", "L", d])]
    outputs = [_float("hidden", ["B", "L", d])]
    for i in range(dims.decoder_layers):
        p = f"decoder/layer_{i}"
        h = g.layer_norm(x, f"{p}/self_attention/layer_norm")
        q, k, v = g.projections(h, f"{p}/self_attention/linear_0", 3)
        (past_k, present_k), (past_v, present_v) = cache_names(i, "k"), cache_names(i, "v")
        g.nodes.append(helper.make_node("Concat", [past_k, g.heads(k)], [present_k], axis=2))
        g.nodes.append(helper.make_node("Concat", [past_v, g.heads(v)], [present_v], axis=2))
        k_t = g.op("Transpose", [present_k], perm=[0, 1, 3, 2])
        a = g.attend(g.heads(q), k_t, present_v, mask)
        x = g.op("Add", [x, g.linear(a, f"{p}/self_attention/linear_1", d, d)], "res")
        h = g.layer_norm(x, f"{p}/attention/layer_norm")
        q = g.linear(h, f"{p}/attention/linear_0", d, d)
        ck, cv = cross_names(i)
        a = g.attend(g.heads(q), ck, cv, None)
        x = g.op("Add", [x, g.linear(a, f"{p}/attention/linear_2", d, d)], "res")
        x = g.ffn(x, f"{p}/ffn")
        inputs += [_float(past_k, ["B", h_, "P", hd]), _float(past_v, ["B", h_, "P", hd])]
        inputs += [_float(ck, ["C", h_, hd, "S"]), _float(cv, ["C", h_, "S", hd])]
        outputs += [_float(present_k, ["B", h_, "N", hd]), _float(present_v, ["B", h_, "N", hd])]
    g.nodes.append(helper.make_node("LayerNormalization", [x, g.const(g.weight("decoder/layer_norm/gamma", (d,)), "g"),
                                                           g.const(g.weight("decoder/layer_norm/beta", (d,)), "b")],
                                    ["hidden"], axis=-1, epsilon=LN_EPS))
    return g.model(inputs, outputs, "whisper_decoder")


def build_head(weights: Ct2Model) -> onnx.ModelProto:
    dims = whisper_dims(weights)
    g = _Graph(weights, dims)
    table = g.weight("decoder/embeddings/weight", (dims.vocab, dims.d_model))
    g.nodes.append(helper.make_node("MatMul", ["hidden", g.const(table.T, "head.w")], ["logits"]))
    return g.model([_float("hidden", ["N", dims.d_model])], [_float("logits", ["N", dims.vocab])], "whisper_head")


def embedding_table_int8(weights: Ct2Model) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 of the token embeddings: (codes [V, D] int8, scales [V] float32)."""
    table = weights.get("decoder/embeddings/weight")
    scales = np.maximum(np.abs(table).max(axis=1), 1e-8) / 127.0
    codes = np.clip(np.round(table / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales.astype(np.float32)
