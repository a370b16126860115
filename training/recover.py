"""A trainable torch network recovered from a shipped ONNX graph whose BatchNorm was folded.

Why: a shipped bundle is often the only copy of a network left (its training run's model.pt can
be lost with a machine), yet a next candidate wants to start from it or be taught by it. The
exporter folds every BatchNorm that follows a convolution into that convolution
(W' = W * gamma / sqrt(var + eps), b' = beta + (b - mean) * gamma / sqrt(var + eps)), so the
original gamma, beta and running statistics cannot be told apart from the graph. What can be
rebuilt is a network that computes the same function and trains like a BatchNorm network:

* each convolution gets W' (the folded weight), and its BatchNorm is re-parameterised so that in
  eval mode it adds exactly b' back: running mean/var = the per-channel mean/variance of W'x on
  calibration crops, gamma = sqrt(var + eps), beta = b' + mean;
* so eval mode equals the graph (checked on the calibration crops against ONNX Runtime), and in
  train mode the batch statistics are close to the running ones on data like the calibration
  crops, which is what lets a fine-tune start where the shipped network is.

Parameters are matched by the order the network calls its modules against the order of the
graph's nodes, with every shape and convolution attribute checked; the final equality check
against ONNX Runtime is what makes the mapping trustworthy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn

from sdk.errors import InputValidationError, ModelError
from sdk.preprocess import MODALITIES
from sdk.types import CROP_SIZE
from sdk.validate import check_array

#: Largest |P(live) graph - P(live) recovered| allowed on the calibration crops.
DEFAULT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class _Call:
    module: nn.Module
    input_id: int
    output_id: int


def _call_order(network: nn.Module) -> list[_Call]:
    """Conv2d, BatchNorm2d, PReLU and Linear modules in the order one forward pass calls them."""
    calls: list[_Call] = []
    # Every tensor seen stays alive in `alive`, so no id is reused by another tensor mid-pass.
    alive: list[torch.Tensor] = []
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.PReLU, nn.Linear, nn.BatchNorm1d)

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        alive.extend([inputs[0], output])
        calls.append(_Call(module, id(inputs[0]), id(output)))

    handles = [m.register_forward_hook(hook) for m in network.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            dummy = torch.zeros(1, 3, CROP_SIZE, CROP_SIZE)
            network.eval()(dummy, dummy, dummy)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def newest_training_record(manifest: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(key, record) of the run that made a bundle's weights: its fine-tune, else its distillation."""
    provenance = manifest.get("provenance") or {}
    for key in ("fine_tune", "distillation"):
        record = provenance.get(key)
        if isinstance(record, dict) and isinstance(record.get("config"), dict):
            return key, record
    raise InputValidationError("the bundle's provenance records no training config (fine_tune or distillation)")


def _attribute(node: Any, name: str, default: Any) -> Any:
    import onnx

    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _check_conv(index: int, conv: nn.Conv2d, node: Any, weight: np.ndarray) -> None:
    expected = {
        "weight": tuple(conv.weight.shape), "strides": tuple(conv.stride), "dilations": tuple(conv.dilation),
        "group": conv.groups, "pads": tuple(conv.padding) * 2,
    }
    found = {
        "weight": tuple(weight.shape), "strides": tuple(_attribute(node, "strides", [1, 1])),
        "dilations": tuple(_attribute(node, "dilations", [1, 1])), "group": int(_attribute(node, "group", 1)),
        "pads": tuple(_attribute(node, "pads", [0, 0, 0, 0])),
    }
    if expected != found:
        raise ModelError(f"convolution {index} of the graph is not the network's: {found} against {expected}")


def recover_network(
    graph_path: str | Path,
    network: nn.Module,
    calibration_inputs: Mapping[str, np.ndarray],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Load the folded graph's weights into ``network`` (an untrained instance of its architecture).

    ``calibration_inputs`` are model inputs ({"rgb", "ir", "depth"}: N x 3 x 112 x 112 float32 in
    [0, 255], e.g. ``sdk.preprocess.crops_to_inputs``) used for the BatchNorm statistics and the
    equality check. Raises ModelError when the graph is not this architecture or the recovered
    network does not compute the graph's P(live) within ``tolerance``. Returns a report.
    """
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from training.export import LiveProbability

    for name in MODALITIES:
        check_array(f"calibration input {name!r}", calibration_inputs.get(name),
                    shape=(None, 3, CROP_SIZE, CROP_SIZE), dtype=np.float32, finite=True)
    n_crops = len(calibration_inputs["rgb"])
    if n_crops < 2 or any(len(calibration_inputs[m]) != n_crops for m in MODALITIES):
        raise InputValidationError("the three calibration inputs need the same number of crops, at least 2")

    graph = onnx.load(str(graph_path))
    weights = {init.name: np.array(numpy_helper.to_array(init)) for init in graph.graph.initializer}
    unsupported = sorted({n.op_type for n in graph.graph.node} & {"BatchNormalization", "MatMul"})
    if unsupported:
        raise ModelError(f"{graph_path} has {unsupported} nodes: only graphs whose BatchNorms were all "
                         "folded into convolutions can be recovered")
    conv_nodes = [n for n in graph.graph.node if n.op_type == "Conv"]
    prelu_nodes = [n for n in graph.graph.node if n.op_type == "PRelu"]
    gemm_nodes = [n for n in graph.graph.node if n.op_type == "Gemm"]

    calls = _call_order(network)
    producer = {call.output_id: call.module for call in calls}
    convs = [c.module for c in calls if isinstance(c.module, nn.Conv2d)]
    prelus = [c.module for c in calls if isinstance(c.module, nn.PReLU)]
    linears = [c.module for c in calls if isinstance(c.module, nn.Linear)]
    bn_of: dict[nn.Conv2d, nn.BatchNorm2d] = {}
    for call in calls:
        if isinstance(call.module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            source = producer.get(call.input_id)
            if not isinstance(source, nn.Conv2d) or not isinstance(call.module, nn.BatchNorm2d):
                raise ModelError(f"{type(network).__name__} has a BatchNorm that does not follow a convolution: "
                                 "the exporter keeps it as its own node, which this recovery does not map")
            bn_of[source] = call.module
    counts = {"Conv": (len(conv_nodes), len(convs)), "PRelu": (len(prelu_nodes), len(prelus)),
              "Gemm": (len(gemm_nodes), len(linears))}
    if any(graph_count != torch_count for graph_count, torch_count in counts.values()):
        raise ModelError(f"{graph_path} is not this network: (graph, network) counts {counts}")

    folded_bias: dict[nn.Conv2d, np.ndarray] = {}
    with torch.no_grad():
        for index, (node, conv) in enumerate(zip(conv_nodes, convs)):
            weight = weights.get(node.input[1])
            if weight is None:
                raise ModelError(f"convolution {index} of {graph_path} takes its weight from no initializer")
            _check_conv(index, conv, node, weight)
            bias = weights.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            conv.weight.copy_(torch.from_numpy(weight))
            if conv in bn_of:
                if conv.bias is not None:
                    raise ModelError(f"convolution {index} has both a bias and a BatchNorm; not a layout this maps")
                folded_bias[conv] = bias if bias is not None else np.zeros(weight.shape[0], np.float32)
            elif conv.bias is not None:
                if bias is None or bias.shape != tuple(conv.bias.shape):
                    raise ModelError(f"convolution {index}: the graph's bias does not fit the network's")
                conv.bias.copy_(torch.from_numpy(bias))
            elif bias is not None and np.any(bias != 0):
                raise ModelError(f"convolution {index} has a bias in the graph but none in the network")
        for index, (node, prelu) in enumerate(zip(prelu_nodes, prelus)):
            slope = weights.get(node.input[1])
            if slope is None or slope.size != prelu.weight.numel():
                raise ModelError(f"PReLU {index}: the graph's slope does not fit the network's {tuple(prelu.weight.shape)}")
            prelu.weight.copy_(torch.from_numpy(slope.reshape(prelu.weight.shape)))
        for index, (node, linear) in enumerate(zip(gemm_nodes, linears)):
            weight, bias = weights.get(node.input[1]), weights.get(node.input[2])
            if weight is None or bias is None:
                raise ModelError(f"Gemm {index} takes its parameters from no initializer")
            if not int(_attribute(node, "transB", 0)):
                weight = weight.T
            if weight.shape != tuple(linear.weight.shape) or bias.shape != tuple(linear.bias.shape):
                raise ModelError(f"Gemm {index}: {weight.shape} does not fit the network's {tuple(linear.weight.shape)}")
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            linear.bias.copy_(torch.from_numpy(bias))

        # Pass 1: every BatchNorm adds b' and nothing else (mean 0, var 1 - eps, gamma 1), so the
        # network already computes the graph, and the statistics of W'x can be read in one pass.
        for conv, bn in bn_of.items():
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(folded_bias[conv]))
        sums = {conv: torch.zeros(conv.out_channels, dtype=torch.float64) for conv in bn_of}
        squares = {conv: torch.zeros(conv.out_channels, dtype=torch.float64) for conv in bn_of}
        counted = {conv: 0 for conv in bn_of}

        def accumulate(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            values = output.detach().double().transpose(0, 1).reshape(output.shape[1], -1)
            sums[module] += values.sum(dim=1)
            squares[module] += (values * values).sum(dim=1)
            counted[module] += values.shape[1]

        def torch_batch(part: slice) -> list[torch.Tensor]:
            return [torch.from_numpy(np.ascontiguousarray(calibration_inputs[m][part])) for m in MODALITIES]

        batches = [slice(start, start + batch_size) for start in range(0, n_crops, batch_size)]
        handles = [conv.register_forward_hook(accumulate) for conv in bn_of]
        network.eval()
        wrapper = LiveProbability(network).eval()
        try:
            recovered_scores = [wrapper(*torch_batch(part)).numpy() for part in batches]
        finally:
            for handle in handles:
                handle.remove()
        # Pass 2: the statistics a BatchNorm network trained on such crops would hold, with the
        # affine part chosen so that eval mode still adds exactly b'.
        for conv, bn in bn_of.items():
            mean = sums[conv] / counted[conv]
            variance = (squares[conv] / counted[conv] - mean * mean).clamp_min(0.0)
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(variance.float())
            bn.weight.copy_(torch.sqrt(variance + bn.eps).float())
            bn.bias.copy_(torch.from_numpy(folded_bias[conv]) + mean.float())

        # Train mode on one batch: how close batch statistics keep a fine-tune's start to the graph.
        # A train-mode pass also moves the running statistics; they are put back, or eval mode
        # would no longer compute the graph.
        kept = {name: buffer.clone() for name, buffer in network.named_buffers()}
        first = batches[0]
        try:
            train_scores = wrapper.train()(*torch_batch(first)).numpy()
        finally:
            wrapper.eval()
            for name, buffer in network.named_buffers():
                buffer.copy_(kept[name])

        session = ort.InferenceSession(str(graph_path), providers=["CPUExecutionProvider"])
        output_name = session.get_outputs()[0].name
        graph_scores = np.concatenate([
            session.run([output_name], {m: calibration_inputs[m][part] for m in MODALITIES})[0] for part in batches])
        final_scores = np.concatenate([wrapper(*torch_batch(part)).numpy() for part in batches])

    max_diff = float(np.abs(final_scores - graph_scores).max())
    identity_diff = float(np.abs(np.concatenate(recovered_scores) - graph_scores).max())
    if not max_diff <= tolerance:
        raise ModelError(f"the recovered network and {graph_path} disagree by {max_diff:.3g} > {tolerance} "
                         f"on {n_crops} calibration crops")
    return {
        "n_convolutions": len(convs), "n_batchnorms_refolded": len(bn_of), "n_prelu": len(prelus),
        "n_linear": len(linears), "n_calibration_crops": n_crops,
        "max_abs_diff_eval_vs_graph": max_diff,
        "max_abs_diff_before_statistics": identity_diff,
        "max_abs_diff_train_mode_first_batch": float(np.abs(train_scores - graph_scores[first]).max()),
        "tolerance": tolerance,
    }
