"""Caption swaps between random pairs of rows: the controlled corruption of `pairsmith corrupt` (swap mode).

Also used by the toy zoo's training and by the tests that prove CLIP scores find mismatched pairs.
"""

from __future__ import annotations

import numpy as np


def swap_captions(
    captions: list[str], fraction: float, rng: np.random.Generator
) -> tuple[list[str], list[bool]]:
    """Exchange captions between random pairs of rows (Chen et al.'s 'swap' corruption).

    round(fraction * n / 2) pairs are swapped, so `fraction` of the rows rounded to an even count;
    pairs whose captions are equal are skipped (fewer swaps if too few differ). The mask marks both
    sides of every swap.
    """
    out, swapped = list(captions), [False] * len(captions)
    order = rng.permutation(len(captions)).tolist()
    wanted = int(round(fraction * len(captions) / 2))
    done = 0
    while done < wanted and len(order) >= 2:
        i, j = order.pop(), order.pop()
        if out[i] == out[j]:
            continue
        out[i], out[j] = out[j], out[i]
        swapped[i] = swapped[j] = True
        done += 1
    return out, swapped
