"""Geometry of a cluster template's brick drawing (an SVG the template renders server-side).

Bricks are placed by their template position: one column per distinct x coordinate (Hanami
connects bricks to their neighbours along the way from input to output), bricks of a column
stacked by (y, z). Each brick of a column is linked to every brick of the next column. The SVG
uses only attributes and classes (strict CSP: no style attributes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from webconsole.protocol.template import Brick, ClusterTemplate

BOX_WIDTH = 170
COLUMN_GAP = 70
ROW_GAP = 24
MARGIN = 12
MIN_HEIGHT = 58


@dataclass(frozen=True)
class BrickBox:
    """One brick as a box in the drawing."""

    x: int
    y: int
    width: int
    height: int
    kind: str  # "input" | "hidden" | "output"
    name: str
    neurons: int
    position: tuple[int, int, int]

    @property
    def center_y(self) -> int:
        return self.y + self.height // 2

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name} {self.neurons}".replace("  ", " ")


@dataclass(frozen=True)
class Link:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class BrickLayout:
    boxes: tuple[BrickBox, ...]
    links: tuple[Link, ...]
    width: int
    height: int

    @property
    def total_neurons(self) -> int:
        return sum(box.neurons for box in self.boxes)

    @property
    def description(self) -> str:
        """A text alternative: 'input test_input (784) → hidden (400) → output test_output (10)'."""
        return " → ".join(
            f"{box.kind}{' ' + box.name if box.name else ''} ({box.neurons})" for box in self.boxes
        )


def _kind(brick: Brick) -> str:
    if brick.input_name is not None:
        return "input"
    if brick.output_name is not None:
        return "output"
    return "hidden"


def _height(neurons: int) -> int:
    # Grows with the order of magnitude, so 784 and 10 neurons look different but both fit.
    return MIN_HEIGHT + int(14 * math.log10(max(neurons, 1)))


def brick_layout(template: ClusterTemplate) -> BrickLayout:
    """Place the bricks of ``template`` in columns by x position, linked column to column."""
    columns: dict[int, list[Brick]] = {}
    for brick in template.bricks:
        columns.setdefault(brick.position[0], []).append(brick)
    boxes: list[BrickBox] = []
    by_column: list[list[BrickBox]] = []
    for index, x in enumerate(sorted(columns)):
        top = MARGIN
        placed: list[BrickBox] = []
        for brick in sorted(columns[x], key=lambda b: (b.position[1], b.position[2])):
            height = _height(brick.neurons)
            box = BrickBox(
                x=MARGIN + index * (BOX_WIDTH + COLUMN_GAP), y=top, width=BOX_WIDTH, height=height,
                kind=_kind(brick), name=brick.name, neurons=brick.neurons, position=brick.position,
            )
            placed.append(box)
            top += height + ROW_GAP
        by_column.append(placed)
        boxes.extend(placed)
    # Centre each column vertically against the tallest one.
    tallest = max((sum(b.height for b in col) + ROW_GAP * (len(col) - 1) for col in by_column), default=0)
    centred: list[list[BrickBox]] = []
    for col in by_column:
        used = sum(b.height for b in col) + ROW_GAP * (len(col) - 1)
        shift = (tallest - used) // 2
        centred.append([BrickBox(**{**b.__dict__, "y": b.y + shift}) for b in col])
    links = [
        Link(a.x + a.width, a.center_y, b.x, b.center_y)
        for left, right in zip(centred, centred[1:])
        for a in left
        for b in right
    ]
    flat = tuple(box for col in centred for box in col)
    width = MARGIN * 2 + len(centred) * BOX_WIDTH + max(0, len(centred) - 1) * COLUMN_GAP
    return BrickLayout(boxes=flat, links=tuple(links), width=width, height=tallest + MARGIN * 2)
