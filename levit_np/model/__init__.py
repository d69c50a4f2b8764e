"""The model: the five variants as data, the parameter table, the attention bias, token grids and the forward pass.

Read in this order: `config` (what a LeViT is made of), `params` (every tensor it holds), `attention_bias`
(the learned bias and its index), `grid` (token grids for any input size), `forward` (the forward pass).
Importing this package loads no NumPy.
"""
