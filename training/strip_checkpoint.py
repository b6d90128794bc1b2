"""Drop optimizer state from a checkpoint (weights + config + summary only): for shipping it.

  /usr/bin/python3 -m training.strip_checkpoint checkpoints/ctc/ckpt.pt checkpoints/ctc/model.pt
"""
import argparse

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="checkpoint to read")
    ap.add_argument("dst", help="checkpoint to write, without optimizer state")
    args = ap.parse_args()
    state = torch.load(args.src, map_location="cpu")
    state.pop("optimizer", None)
    torch.save(state, args.dst)


if __name__ == "__main__":
    main()
