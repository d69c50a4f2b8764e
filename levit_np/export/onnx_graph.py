"""The LeViT forward pass as an ONNX graph, written node by node from the folded weights (kernels/fold.py).

The graph follows model/forward.py block for block, on the folded layers: BatchNorm already inside every conv
and linear, the attention scale inside the query rows, the two heads merged into one. The attention bias of
every block is gathered once, at the export's input size, into a constant (heads, Nq, Nk) (resampled from the
training-size table for other sizes, as model/attention_bias.py does), so the graph holds no index arithmetic.

Standard operators only: Conv, MatMul, Add, HardSwish (opset 14+), Reshape, Transpose, Split, Softmax, Slice
(the ::2 subsample), ReduceMean, Gemm. Every Reshape copies the batch dimension (shape entry 0), so the same
graph serves a fixed batch or a dynamic one. Node and tensor names are the layer names
(`stages.0.blocks.1.attn.qkv.matmul`), so the graph reads like the checkpoint.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from levit_np.model.attention_bias import gather_bias
from levit_np.model.config import Block, LevitConfig, StemConv, blocks, stem_convs
from levit_np.model.grid import subsampled_side, token_grids
from levit_np.export.settings import check_opset

REDUCE_AXES_AS_INPUT = 18  # from opset 18 ReduceMean takes its axes as an input, not an attribute
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"
BATCH_NAME = "batch"  # the symbolic batch dimension of a dynamic-batch export


class GraphBuilder:
    """Collects nodes and initializers in the order they are made (so the same model gives the same bytes)."""

    def __init__(self, opset: int):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: dict = {}  # name -> TensorProto, in insertion order

    def weight(self, name: str, array: np.ndarray) -> str:
        """A float32 initializer named `name`."""
        if name in self.initializers:
            raise ValueError(f"initializer {name!r} made twice")
        value = np.ascontiguousarray(array, dtype=np.float32)
        self.initializers[name] = self._numpy_helper.from_array(value, name)
        return name

    def ints(self, values: tuple[int, ...]) -> str:
        """An int64 constant (a shape, axes, starts...), shared by every node that needs the same values."""
        name = "const." + "_".join(str(v).replace("-", "m") for v in values)
        if name not in self.initializers:
            self.initializers[name] = self._numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)
        return name

    def op(self, op_type: str, inputs: list[str], name: str, outputs: int = 1, **attributes):
        """Append a node named `name`; its outputs are `name` (or `name.0`, `name.1`, ...). -> name(s)"""
        names = [name] if outputs == 1 else [f"{name}.{i}" for i in range(outputs)]
        self.nodes.append(self._helper.make_node(op_type, inputs, names, name=name, **attributes))
        return names[0] if outputs == 1 else names

    def reshape(self, x: str, shape: tuple[int, ...], name: str) -> str:
        """Reshape with shape[0] = 0, i.e. the batch dimension copied from the input."""
        return self.op("Reshape", [x, self.ints((0,) + tuple(shape))], name)


def conv(g: GraphBuilder, x: str, layer: dict, spec: StemConv) -> str:
    """A folded conv, then HardSwish if the stem has one there. (B, Cin, H, W) -> (B, Cout, H/s, W/s)"""
    weight = g.weight(f"{spec.name}.weight", layer["weight"])
    bias = g.weight(f"{spec.name}.bias", layer["bias"])
    y = g.op("Conv", [x, weight, bias], spec.name, kernel_shape=[spec.kernel] * 2, strides=[spec.stride] * 2,
             pads=[spec.padding] * 4)
    return g.op("HardSwish", [y], f"{spec.name}.hardswish") if spec.activation else y


def linear(g: GraphBuilder, x: str, layer: dict, name: str, activation: bool = False) -> str:
    """A folded linear x W^T + b, then HardSwish if asked. (B, N, Cin) -> (B, N, Cout)"""
    weight = g.weight(f"{name}.weight", np.asarray(layer["weight"]).T)  # (Cin, Cout): MatMul's right operand
    bias = g.weight(f"{name}.bias", layer["bias"])
    y = g.op("Add", [g.op("MatMul", [x, weight], f"{name}.matmul"), bias], f"{name}.add")
    return g.op("HardSwish", [y], f"{name}.hardswish") if activation else y


def split_heads(g: GraphBuilder, x: str, tokens: int, heads: int, widths: tuple[int, ...], name: str) -> list[str]:
    """Head-interleaved channels into per-head parts. (B, N, h*sum(widths)) -> [(B, h, N, w) for w in widths]"""
    x = g.reshape(x, (tokens, heads, sum(widths)), f"{name}.reshape")  # (B, N, h, sum(widths))
    x = g.op("Transpose", [x], f"{name}.transpose", perm=[0, 2, 1, 3])  # (B, h, N, sum(widths))
    if len(widths) == 1:
        return [x]
    return g.op("Split", [x, g.ints(widths)], f"{name}.split", outputs=len(widths), axis=-1)


def attention(g: GraphBuilder, q: str, k: str, v: str, bias: str, block: Block, queries: int, name: str) -> str:
    """softmax(q k^T + bias) v per head (scale folded into q), heads concatenated, then HardSwish.

    q (B, h, Nq, kd), k (B, h, Nk, kd), v (B, h, Nk, d), bias (h, Nq, Nk) -> (B, Nq, h*d)
    """
    key_t = g.op("Transpose", [k], f"{name}.key_t", perm=[0, 1, 3, 2])  # (B, h, kd, Nk)
    logits = g.op("Add", [g.op("MatMul", [q, key_t], f"{name}.qk"), bias], f"{name}.logits")  # (B, h, Nq, Nk)
    weights = g.op("Softmax", [logits], f"{name}.softmax", axis=-1)
    out = g.op("MatMul", [weights, v], f"{name}.av")  # (B, h, Nq, d)
    out = g.op("Transpose", [out], f"{name}.merge_heads", perm=[0, 2, 1, 3])  # (B, Nq, h, d)
    out = g.reshape(out, (queries, block.num_heads * block.value_dim), f"{name}.concat")  # (B, Nq, h*d)
    return g.op("HardSwish", [out], f"{name}.hardswish") if block.attn_activation else out


def attention_block(g: GraphBuilder, x: str, block: Block, folded: dict, grid: tuple[int, int]) -> str:
    """Residual attention with the gathered bias. (B, N, C) -> (B, N, C)"""
    n = grid[0] * grid[1]
    kd, d = block.key_dim, block.value_dim
    bias = g.weight(f"{block.name}.attention_bias", gather_bias(folded[f"{block.name}.attention_biases"], grid, grid))
    qkv = linear(g, x, folded[f"{block.name}.qkv"], f"{block.name}.qkv")  # (B, N, h*(2kd+d))
    q, k, v = split_heads(g, qkv, n, block.num_heads, (kd, kd, d), f"{block.name}.heads")
    out = attention(g, q, k, v, bias, block, n, f"{block.name}.attention")  # (B, N, h*d)
    out = linear(g, out, folded[f"{block.name}.proj"], f"{block.name}.proj")
    return g.op("Add", [x, out], f"{block.name}.residual")


def subsample(g: GraphBuilder, x: str, grid: tuple[int, int], channels: int, name: str) -> str:
    """Every 2nd token in both directions (the ::2 pick). (B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), C)"""
    rows, cols = grid
    x = g.reshape(x, (rows, cols, channels), f"{name}.grid")  # (B, H, W, C)
    x = g.op("Slice", [x, g.ints((0, 0)), g.ints((rows, cols)), g.ints((1, 2)), g.ints((2, 2))], f"{name}.slice")
    kept = subsampled_side(rows) * subsampled_side(cols)
    return g.reshape(x, (kept, channels), f"{name}.tokens")  # (B, N', C)


def shrink_attention_block(g: GraphBuilder, x: str, block: Block, folded: dict, k_grid: tuple[int, int],
                           q_grid: tuple[int, int]) -> str:
    """Attention whose queries are the subsampled tokens; not residual. (B, N, C_in) -> (B, N', C_out)"""
    kd, d, heads = block.key_dim, block.value_dim, block.num_heads
    n_k, n_q = k_grid[0] * k_grid[1], q_grid[0] * q_grid[1]
    table = folded[f"{block.name}.attention_biases"]
    bias = g.weight(f"{block.name}.attention_bias", gather_bias(table, q_grid, k_grid, stride=2))
    kv = linear(g, x, folded[f"{block.name}.kv"], f"{block.name}.kv")  # (B, N, h*(kd+d))
    k, v = split_heads(g, kv, n_k, heads, (kd, d), f"{block.name}.kv_heads")
    x_sub = subsample(g, x, k_grid, block.dim_in, f"{block.name}.subsample")  # (B, N', C_in)
    q = linear(g, x_sub, folded[f"{block.name}.q"], f"{block.name}.q")  # (B, N', h*kd)
    (q,) = split_heads(g, q, n_q, heads, (kd,), f"{block.name}.q_heads")
    out = attention(g, q, k, v, bias, block, n_q, f"{block.name}.attention")  # (B, N', h*d)
    return linear(g, out, folded[f"{block.name}.proj"], f"{block.name}.proj")


def mlp_block(g: GraphBuilder, x: str, block: Block, folded: dict) -> str:
    """Residual MLP: linear + HardSwish, linear. (B, N, C) -> (B, N, C)"""
    hidden = linear(g, x, folded[f"{block.name}.fc1"], f"{block.name}.fc1", activation=True)
    out = linear(g, hidden, folded[f"{block.name}.fc2"], f"{block.name}.fc2")
    return g.op("Add", [x, out], f"{block.name}.residual")


def mean_tokens(g: GraphBuilder, x: str) -> str:
    """The average token. (B, N, C) -> (B, C)"""
    if g.opset >= REDUCE_AXES_AS_INPUT:
        return g.op("ReduceMean", [x, g.ints((1,))], "pool", keepdims=0)
    return g.op("ReduceMean", [x], "pool", axes=[1], keepdims=0)


def check_exportable(cfg: LevitConfig) -> None:
    """Raise ValueError for configs the folded export does not cover (the LayerNorm / absolute-position ablations)."""
    if cfg.norm != "bn" or cfg.position != "bias":
        raise ValueError(f"{cfg.name}: only BatchNorm models with attention biases are exported "
                         f"(norm={cfg.norm!r}, position={cfg.position!r})")


def build_graph(cfg: LevitConfig, folded: dict, height: int, width: int, batch: Optional[int], opset: int):
    """The whole model as an onnx GraphProto. (B, 3, H, W) float32 normalised -> (B, num_classes) logits

    `folded` is `kernels.fold.fold_model(cfg, params)`; `batch` None makes the batch dimension symbolic.
    """
    from onnx import TensorProto, helper

    check_opset(opset)
    check_exportable(cfg)
    grids = token_grids(cfg, height, width)
    g = GraphBuilder(opset)
    x = INPUT_NAME
    for spec in stem_convs(cfg):
        x = conv(g, x, folded[spec.name], spec)  # (B, C, H/16, W/16) after the last
    channels = cfg.embed_dims[0]
    x = g.reshape(x, (channels, grids[0][0] * grids[0][1]), "stem.flatten")  # (B, C, N)
    x = g.op("Transpose", [x], "stem.tokens", perm=[0, 2, 1])  # (B, N, C), token = row * W + col
    for block in blocks(cfg):
        if block.kind == "attn":
            x = attention_block(g, x, block, folded, grids[block.stage])
        elif block.kind == "mlp":
            x = mlp_block(g, x, block, folded)
        else:
            x = shrink_attention_block(g, x, block, folded, grids[block.stage - 1], grids[block.stage])
    pooled = mean_tokens(g, x)  # (B, C)
    head = folded["head"]
    g.op("Gemm", [pooled, g.weight("head.weight", head["weight"]), g.weight("head.bias", head["bias"])],
         OUTPUT_NAME, transB=1)  # (B, classes): the mean of the class and distillation heads, merged at fold time
    batch_dim = BATCH_NAME if batch is None else batch
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch_dim, cfg.in_chans, height, width])]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch_dim, cfg.num_classes])]
    return helper.make_graph(g.nodes, cfg.name, inputs, outputs, initializer=list(g.initializers.values()))


def build_model(cfg: LevitConfig, folded: dict, height: int, width: int, batch: Optional[int], opset: int,
                metadata: dict[str, str]):
    """An onnx ModelProto at `opset`, with the lowest IR version that opset needs and `metadata` as metadata_props."""
    from onnx import helper

    from levit_np.version import __version__

    graph = build_graph(cfg, folded, height, width, batch, opset)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="levit-np", producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    model.doc_string = f"LeViT {cfg.name} ({height}x{width}), exported by levit-np from folded weights"
    helper.set_model_props(model, metadata)
    return model
