"""A small TFLite → ONNX converter for openWakeWord classifiers (the model factory's job).

openWakeWord classifiers are a few dense layers with layer norms: RESHAPE, FULLY_CONNECTED,
MEAN/SUB/MUL/ADD/RSQRT (the norm), LOGISTIC. That is all this handles; anything else (such as
hey_jarvis's IF-gated second stage) is refused with a ModelError rather than converted wrongly.
It exists to show that a wake model in ONNX runs through the same runner as a TFLite one, and
needs the `onnx` package (the `build` extra), never on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from device.errors import ModelError
from models.tflite import interpreter_module

OPSET = 17
SUPPORTED = {"RESHAPE", "FULLY_CONNECTED", "MEAN", "SUB", "MUL", "ADD", "RSQRT", "LOGISTIC"}


def convert(tflite_path: str | Path) -> bytes:
    """Return the serialized ONNX model equivalent to the TFLite classifier at `tflite_path`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    module = interpreter_module()
    try:
        it = module.Interpreter(
            model_path=str(tflite_path),
            experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True,
        )
        it.allocate_tensors()
        ops: list[dict[str, Any]] = it._get_ops_details()  # the interpreter's op list
    except (ValueError, RuntimeError, AttributeError) as err:
        raise ModelError("model-convert", f"can't read {tflite_path}: {err}") from None
    unsupported = sorted({op["op_name"] for op in ops} - SUPPORTED)
    if unsupported:
        raise ModelError("model-convert", f"{tflite_path}: ops {unsupported} are not supported by this converter")
    details = {int(d["index"]): d for d in it.get_tensor_details()}
    (inp,) = it.get_input_details()
    (out,) = it.get_output_details()
    produced = {int(o) for op in ops for o in op["outputs"]} | {int(inp["index"])}

    def name(index: int) -> str:
        return f"t{index}"

    initializers: dict[int, Any] = {}

    def const(index: int) -> str:
        if index not in initializers:
            initializers[index] = numpy_helper.from_array(np.array(it.get_tensor(index)), name(index))
        return name(index)

    def ref(index: int) -> str:
        return name(index) if index in produced else const(index)

    activations = _fused_activations(Path(tflite_path), len(ops))
    nodes = []
    for k, op in enumerate(ops):
        ins = [int(i) for i in op["inputs"] if int(i) >= 0]
        (o,) = (int(x) for x in op["outputs"])
        kind = op["op_name"]
        if kind == "RESHAPE":
            shape = np.array(it.get_tensor(ins[1]), dtype=np.int64).reshape(-1)
            initializers[-k - 1] = numpy_helper.from_array(shape, f"shape{k}")
            nodes.append(helper.make_node("Reshape", [ref(ins[0]), f"shape{k}"], [name(o)]))
        elif kind == "FULLY_CONNECTED":
            nodes.append(helper.make_node("Gemm", [ref(i) for i in ins], [name(o)], transB=1))
        elif kind == "MEAN":
            axes = [int(a) for a in np.array(it.get_tensor(ins[1])).reshape(-1)]
            keep = len(details[o]["shape"]) == len(details[ins[0]]["shape"])
            nodes.append(helper.make_node("ReduceMean", [ref(ins[0])], [name(o)], axes=axes, keepdims=int(keep)))
        elif kind in ("SUB", "MUL", "ADD"):
            nodes.append(helper.make_node(kind.capitalize(), [ref(i) for i in ins], [name(o)]))
        elif kind == "RSQRT":
            nodes.append(helper.make_node("Sqrt", [ref(ins[0])], [f"sqrt{k}"]))
            nodes.append(helper.make_node("Reciprocal", [f"sqrt{k}"], [name(o)]))
        elif kind == "LOGISTIC":
            nodes.append(helper.make_node("Sigmoid", [ref(ins[0])], [name(o)]))
        if activations[k] == _RELU:
            # TFLite fuses the activation into the op; ONNX needs it as its own node.
            nodes[-1].output[0] = f"pre{k}"
            nodes.append(helper.make_node("Relu", [f"pre{k}"], [name(o)]))
        elif activations[k] != _NONE:
            raise ModelError("model-convert", f"{tflite_path}: op {k} has fused activation {activations[k]}, not supported")
    graph = helper.make_graph(
        nodes,
        Path(tflite_path).stem,
        [helper.make_tensor_value_info(name(int(inp["index"])), TensorProto.FLOAT, [int(d) for d in inp["shape"]])],
        [helper.make_tensor_value_info(name(int(out["index"])), TensorProto.FLOAT, [int(d) for d in out["shape"]])],
        initializer=list(initializers.values()),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="voxhome")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


_NONE, _RELU = 0, 1


def _fused_activations(path: Path, count: int) -> list[int]:
    """Each operator's fused activation (TFLite enum), read from the flatbuffer itself: the
    interpreter's op details don't expose builtin options."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    operators = model.subgraphs[0].operators
    if len(operators) != count:
        raise ModelError("model-convert", f"{path}: {len(operators)} operators in the file, {count} in the interpreter")
    return [int(getattr(op.builtinOptions, "fusedActivationFunction", _NONE) or _NONE) for op in operators]
