"""Export to deployable formats without a deep-learning framework: the ONNX graph written node by node.

`onnx_graph` builds the graph from the folded weights (kernels/fold.py), `metadata` describes the file's
input and provenance, `onnx_export` reads weights and writes the file atomically (`levit export`).
"""
