"""Reading the model: FLOP and parameter counts, the paper's ablations, attention-bias maps, block-by-block traces,
and the optional PyTorch reference."""
