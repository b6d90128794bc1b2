#!/usr/bin/env python3
"""Drop optimizer state from a checkpoint (weights + config + summary only): for shipping it."""
import sys
import torch

state = torch.load(sys.argv[1], map_location="cpu")
state.pop("optimizer", None)
torch.save(state, sys.argv[2])
