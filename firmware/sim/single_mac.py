#!/usr/bin/env python3
"""Cycles of a single-MAC, layer-serial schedule of the same model (the published design's
structure: every layer through one multiply-accumulate unit, one layer after another), counted
analytically and optimistically: 1 cycle per MAC, 1 cycle per requantized output, 1 cycle per
element of every elementwise step (additions, norms, pooling) and 3 cycles per attention
probability (row maximum, EXP lookup and sum, normalization). No memory or control overhead.

usage: single_mac.py W F d H N P     (prints the total and the parts)
"""
import sys


def single_mac_cycles(W, F, d, H, N, P):
    ffn = 4 * d
    macs = W * d * F                                  # input projection
    outs = W * d
    elem = W * d                                      # positional addition
    for _ in range(N):
        macs += 3 * W * d * d + W * W * d + W * W * d + W * d * d   # q k v, scores, context, o
        outs += 3 * W * d + H * W * W + W * d + W * d
        soft = 3 * H * W * W
        macs += W * ffn * d + W * d * ffn
        outs += W * ffn + W * d
        elem += 4 * W * d + soft                      # res1 norm1 res2 norm2, softmax
    elem += W * d + d                                 # pooling sum and its requant
    macs += P * d
    outs += P
    return macs + outs + elem, macs, outs, elem


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:7]] if len(sys.argv) >= 7 else [24, 1, 16, 1, 1, 1]
    total, macs, outs, elem = single_mac_cycles(*args)
    print(f"{total} cycles ({macs} MACs, {outs} requantized outputs, {elem} elementwise steps)")
