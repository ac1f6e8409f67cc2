"""Camera moves over a still picture: push-in, pull-out, pans, drift, static, transferred.

A picture is prepared once as a *plate* (see `shots`): fitted to the output size enlarged
by the tightest zoom its shots use. A move is a `MotionPath`: framings of the plate
(`Camera`) evenly spaced over the shot, and how to pace between them. Seeded and prompted
moves have two keys and an easing; a whip, a move from or to a pinned frame, and a move
transferred from a reference video (see `transfer`) carry their timing in dozens of keys.

A move's strength follows the pace its words ask for (`speed`: 0.55 "slowly", 1 by
default, 1.7 "quickly", 3 "whip"): a push-in zooms about 1.1x, 1.24x, 1.6x or 2x across
its shot, a pan crosses 8%, 20%, 45% or 75% of the frame, and a whip does it in a
half-second burst. A static camera is exactly still.

A push-in or a pan ends on a point: the subject found in the picture (see `saliency`), or
the side the prompt names ("on the right"); pull-outs start there. A subject off the
picture's centre can only be centred by a tighter framing, so a push-in toward one starts
closer, up to `AIM_ZOOM`, keeping the zoom across the shot its words ask for (a pan keeps
its travel); a named side is leaned toward as far as the move's own framing allows.

A pinned first (last) frame is the whole picture: the move starts (ends) there, and where
it needs a tighter framing (a pan needs margin to cross) a lead of under a second zooms
in first (or back out at the end). A picture padded to fit the frame (a portrait in a
landscape video) is moved inside its own area when pinned, so after the lead-in the
picture fills the frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from r2v.media.fit import plan_fit

MotionKind = Literal[
    "push_in", "pull_out", "pan_left", "pan_right", "pan_up", "pan_down", "drift", "static",
    "transfer",
]  # fmt: skip
SEEDED_KINDS: tuple[MotionKind, ...] = (
    "push_in", "pull_out", "pan_left", "pan_right", "pan_up", "pan_down", "drift",
)  # fmt: skip

PLATE_LIMIT = 4.0
"""The largest plate scale, and so the tightest framing of the plate any move reaches
(a plate's memory grows with its square)."""
MOVE_LIMIT = 3.0
"""The tightest framing of a move, relative to the framing where the picture fills the frame."""
AIM_ZOOM = 2.0
"""The tightest a move frames to centre a subject: anything in the middle half of the
picture can be centred."""
WHIP_SPEED = 2.5
"""From this pace on, a move happens in a burst (`_BURST_SECONDS`) rather than a glide."""

# A move's strength by pace: at these speeds, a push-in's (pull-out's) zoom across the shot
# and a pan's travel in frame widths (heights for tilts); in between, interpolated.
_SPEEDS = (0.55, 1.0, 1.7, 3.0)
_ZOOMS = (1.1, 1.24, 1.6, 2.0)
_PANS = (0.08, 0.2, 0.45, 0.75)
_VARIATION = 0.1  # seeded moves vary their strength by up to this share
_TRAVEL = 0.9  # share of the available margin a move crosses, keeping clear of the edges
_BURST_SECONDS = 0.5
_BURST_SHARE = 0.1  # of a whip's travel spent drifting before and after its burst
_LEAD_SECONDS = 0.8
_KEYS_PER_SECOND = 12
_FILL_SLACK = 0.99  # a padded picture's area is entered a little past its edges


@dataclass(frozen=True)
class Camera:
    """A framing of the plate: `zoom` >= 1 (1 shows all of it) and the view's centre.

    `x` and `y` are the centre's offset from the plate's centre as a fraction of the plate's
    width and height (right and down are positive); they stay within the margin the zoom
    leaves, so the view never leaves the picture.
    """

    zoom: float
    x: float = 0.0
    y: float = 0.0

    def clamped(self, max_zoom: float = PLATE_LIMIT) -> Camera:
        """This framing, pulled back inside `max_zoom` and the picture's edges."""
        zoom = min(max(self.zoom, 1.0), max_zoom)
        margin = margin_at(zoom)
        return Camera(zoom, min(max(self.x, -margin), margin), min(max(self.y, -margin), margin))


REST = Camera(1.0)
"""The whole picture, centred: where a pinned first or last frame starts or ends."""


@dataclass(frozen=True)
class Aim:
    """Where a push-in or a pan ends (and a pull-out starts): a point in the terms of a
    framing's centre (`Camera.x`, `Camera.y`), None on an axis where the move keeps its
    own; `closer` lets the move frame tighter than its words ask, keeping its pace, to
    centre the point."""

    x: float | None = None
    y: float | None = None
    closer: bool = False

    @staticmethod
    def at_sides(sides: Iterable[str]) -> Aim:
        """The far side (or the centre) of the picture that a prompt names: "left", "right",
        "top", "bottom", "centre"."""
        named = set(sides)
        centre = 0.0 if "centre" in named else None
        x = -0.5 if "left" in named else (0.5 if "right" in named else centre)
        y = -0.5 if "top" in named else (0.5 if "bottom" in named else centre)
        return Aim(x, y)

    def within(self, cover: float) -> Aim:
        """This aim in the frame-shaped area covering `cover` of the plate (see `onto`)."""
        x = None if self.x is None else self.x / cover
        y = None if self.y is None else self.y / cover
        return Aim(x, y, self.closer)


def margin_at(zoom: float) -> float:
    """How far (a fraction of the plate) the view's centre may stray at `zoom`."""
    return (1.0 - 1.0 / zoom) / 2


@dataclass(frozen=True)
class MotionPath:
    """A camera move over a shot: framings evenly spaced in (eased) time.

    `ease_in` / `ease_out` bring a two-key move to rest at that end; otherwise it keeps some
    speed at the cut, so shots never look frozen at their ends. A `keyed` path's keys carry
    their own timing: it runs through them at an even pace.
    """

    kind: MotionKind
    keys: tuple[Camera, ...]
    ease_in: bool = False
    ease_out: bool = False
    keyed: bool = False

    @property
    def start(self) -> Camera:
        """The framing of the shot's first frame."""
        return self.keys[0]

    @property
    def end(self) -> Camera:
        """The framing of the shot's last frame."""
        return self.keys[-1]

    @property
    def max_zoom(self) -> float:
        """The tightest framing of the move: the plate must be at least this much enlarged."""
        return max(key.zoom for key in self.keys)

    def at(self, progress: float) -> Camera:
        """The framing at `progress` (0 at the shot's first frame, 1 at its last)."""
        p = min(max(progress, 0.0), 1.0)
        smooth = _smooth(p)
        if self.keyed:
            eased = p
        elif self.ease_in and self.ease_out:
            eased = smooth
        elif self.ease_in:
            eased = 1 - math.cos(p * math.pi / 2) if p < 1 else 1.0
        elif self.ease_out:
            eased = math.sin(p * math.pi / 2)
        else:
            eased = 0.5 * p + 0.5 * smooth
        position = eased * (len(self.keys) - 1)
        low = min(int(position), len(self.keys) - 2)
        t = position - low
        a, b = self.keys[low], self.keys[low + 1]
        if t == 0.0:
            return a
        if t == 1.0:
            return b
        # Linear in zoom and centre: between two valid framings every framing is valid too,
        # since the margin grows with the zoom more slowly than linearly.
        return Camera(
            a.zoom + (b.zoom - a.zoom) * t, a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t
        ).clamped(self.max_zoom)


def seeded_path(
    rng: np.random.Generator,
    kind: MotionKind | None = None,
    *,
    speed: float = 1.0,
    seconds: float = 5.0,
    from_rest: bool = False,
    to_rest: bool = False,
    avoid: MotionKind | None = None,
    cover: float = 1.0,
    aim: Aim | None = None,
) -> MotionPath:
    """A move of `kind` (seeded when None) at the pace `speed` over a shot of `seconds`;
    `from_rest` / `to_rest` make it start or end on the whole picture, exactly. `cover`
    (see `cover_share`) keeps the move inside a padded picture's own area; `aim` is where
    a push-in or a pan ends (a pinned shot frames no tighter than its words ask)."""
    choices = [k for k in SEEDED_KINDS if k != avoid]
    drawn = choices[int(rng.integers(len(choices)))]
    if kind is None:
        kind = drawn
        if from_rest and not to_rest and kind == "pull_out":
            kind = "push_in"  # a pull-out cannot start on the whole picture
        if to_rest and not from_rest and kind == "push_in":
            kind = "pull_out"
    if kind == "static":  # a locked-off camera: every frame the same
        return MotionPath("static", (REST, REST))
    start, end = _framings(rng, kind, speed)
    limit = move_limit(cover)
    if aim is not None:
        tightest = min(AIM_ZOOM, limit) if aim.closer and not (from_rest or to_rest) else 1.0
        start, end = aimed(kind, start, end, aim.within(cover), tightest)
    start, end = onto(start.clamped(limit), cover), onto(end.clamped(limit), cover)
    if from_rest and to_rest and REST in (start, end) and speed < WHIP_SPEED:
        # In and back out (or out and back in) over the whole shot, rather than a lead.
        middle = end if start == REST else start
        return MotionPath(kind, (REST, middle, REST), ease_in=True, ease_out=True)
    move = MotionPath(kind, (start, end))
    if speed >= WHIP_SPEED:
        move = _burst(move, seconds)
    return with_ends(move, seconds, from_rest=from_rest, to_rest=to_rest)


def _framings(rng: np.random.Generator, kind: MotionKind, speed: float) -> tuple[Camera, Camera]:
    """Where a move of `kind` at `speed` starts and ends, on a picture filling the frame."""
    vary = 1.0 + float(rng.uniform(-_VARIATION, _VARIATION))
    pace = min(max(speed, _SPEEDS[0]), _SPEEDS[-1])
    tight = float(np.interp(pace, _SPEEDS, _ZOOMS)) ** vary
    margin = margin_at(tight) * _TRAVEL
    aim = Camera(tight, float(rng.uniform(-margin, margin)), float(rng.uniform(-margin, margin)))
    # A pan frames just tight enough for its travel: the view crosses `travel` of its own
    # width, which is 1/zoom of the plate's, within the margin the zoom leaves.
    travel = float(np.interp(pace, _SPEEDS, _PANS)) * vary
    pan_zoom = 1.0 + travel / _TRAVEL
    half = travel / 2 / pan_zoom
    across = float(rng.uniform(-half / 3, half / 3))
    if kind == "push_in":
        return REST, aim
    if kind == "pull_out":
        return aim, REST
    if kind in ("pan_left", "pan_right"):  # "pan_left": the view's centre goes right to left
        sign = -1.0 if kind == "pan_left" else 1.0
        return Camera(pan_zoom, -sign * half, across), Camera(pan_zoom, sign * half, across)
    if kind in ("pan_up", "pan_down"):
        sign = -1.0 if kind == "pan_up" else 1.0
        return Camera(pan_zoom, across, -sign * half), Camera(pan_zoom, across, sign * half)
    # "drift": a slow diagonal float with a slight zoom
    zoom_a, zoom_b = float(rng.uniform(1.06, 1.1)), float(rng.uniform(1.1, 1.14))
    drift = margin_at(zoom_a) * _TRAVEL * min(max(speed, 0.3), 1.0)
    sx, sy = (float(v) for v in rng.choice([-1.0, 1.0], size=2))
    return Camera(zoom_a, sx * drift, sy * drift), Camera(zoom_b, -sx * drift / 2, -sy * drift / 2)


def aimed(
    kind: MotionKind, start: Camera, end: Camera, aim: Aim, tightest: float = 1.0
) -> tuple[Camera, Camera]:
    """The framings of a move of `kind` from `start` to `end` (on a picture filling the
    frame) moved so that it ends as near `aim` as it can, framing up to `tightest` when
    that is tighter than the move's own; other kinds of move are returned as they are."""
    if kind == "pull_out":
        wide, close = aimed("push_in", end, start, aim, tightest)
        return close, wide
    if kind == "push_in":
        wanted = max(abs(v) for v in (aim.x, aim.y, 0.0) if v is not None)
        needed = 1.0 / max(1.0 - 2.0 * wanted, 1e-6)  # the zoom whose margin reaches it
        closer = min(max(needed, end.zoom), max(tightest, end.zoom)) / end.zoom
        if closer <= 1.0:
            return start, _toward(aim, Camera(end.zoom, end.x, end.y))
        return _toward(aim, Camera(closer)), _toward(aim, Camera(end.zoom * closer, end.x, end.y))
    if kind not in ("pan_left", "pan_right", "pan_up", "pan_down"):
        return start, end
    across_x = kind in ("pan_left", "pan_right")

    def swap(c: Camera) -> Camera:
        return c if across_x else Camera(c.zoom, c.y, c.x)

    target = (aim.x, aim.y) if across_x else (aim.y, aim.x)
    a, b = swap(start), swap(end)  # now the pan runs along x
    best: tuple[float, Camera, Camera] | None = None
    most = max(tightest / a.zoom, 1.0)
    for closer in np.geomspace(1.0, most, 24).tolist() if most > 1.0 else [1.0]:
        zoom, travel = a.zoom * closer, (b.x - a.x) / closer
        margin = margin_at(zoom)
        low, high = max(-margin, travel - margin), min(margin, margin + travel)
        want = b.x if target[0] is None else target[0]
        x = min(max(want, low), high)
        y = _reach(target[1], b.y, zoom)
        miss = abs(x - want) + (0.0 if target[1] is None else abs(y - target[1]))
        if best is None or miss < best[0] - 1e-9:
            best = (miss, Camera(zoom, x - travel, y), Camera(zoom, x, y))
        if miss < 1e-9:
            break
    assert best is not None
    return swap(best[1]), swap(best[2])


def _toward(aim: Aim, camera: Camera) -> Camera:
    """`camera` with its centre moved onto `aim`, as far as its zoom's margin allows."""
    return Camera(camera.zoom, _reach(aim.x, camera.x, camera.zoom),
                  _reach(aim.y, camera.y, camera.zoom))  # fmt: skip


def _reach(target: float | None, own: float, zoom: float) -> float:
    """`target` (else `own`) kept within the margin at `zoom`."""
    margin = margin_at(zoom)
    return min(max(own if target is None else target, -margin), margin)


def _burst(move: MotionPath, seconds: float) -> MotionPath:
    """`move` as a whip: a short burst in the middle of the shot, drifting before and after."""
    width = min(_BURST_SECONDS / max(seconds, 1e-3), 0.5)
    glide = replace(move, keyed=True)

    def place(t: float) -> Camera:
        burst = _smooth(min(max((t - 0.5) / width + 0.5, 0.0), 1.0))
        return glide.at(_BURST_SHARE * t + (1 - _BURST_SHARE) * burst)

    return _sampled(move.kind, place, seconds, keys_per_second=2 * _KEYS_PER_SECOND)


def with_ends(
    move: MotionPath, seconds: float, *, from_rest: bool = False, to_rest: bool = False
) -> MotionPath:
    """`move` starting (`from_rest`) or ending (`to_rest`) on the whole picture, exactly:
    where the move's own end is another framing, a lead of under a second joins them."""
    lead_in = from_rest and move.start != REST
    lead_out = to_rest and move.end != REST
    if not (lead_in or lead_out):
        return replace(move, ease_in=move.ease_in or from_rest, ease_out=move.ease_out or to_rest)
    inner = replace(move, ease_in=True if lead_in else move.ease_in,
                    ease_out=True if lead_out else move.ease_out)  # fmt: skip
    share = min(_LEAD_SECONDS, seconds / 4) / max(seconds, 1e-3)
    a = share if lead_in else 0.0
    b = 1.0 - share if lead_out else 1.0

    def place(t: float) -> Camera:
        if t < a:
            return between(REST, inner.start, _smooth(t / a))
        if t > b:
            return between(inner.end, REST, _smooth((t - b) / (1 - b)))
        return inner.at((t - a) / (b - a))

    return _sampled(move.kind, place, seconds)


def between(a: Camera, b: Camera, s: float) -> Camera:
    """The framing `s` of the way from `a` to `b`: zooming at an even rate, the centre
    moving in step. Every framing on the way is inside the picture if `a` and `b` are."""
    if s <= 0.0:
        return a
    if s >= 1.0:
        return b
    zoom = a.zoom * (b.zoom / a.zoom) ** s
    return Camera(zoom, a.x + (b.x - a.x) * s, a.y + (b.y - a.y) * s)


def cover_share(picture: tuple[int, int], output: tuple[int, int]) -> float:
    """The share of the plate's width (and height) that the largest frame-shaped view
    inside a `picture` (width, height) covers: 1 when the picture is cropped to fit, less
    when it is padded (a portrait in a landscape frame), so that no bar shows."""
    plan = plan_fit(picture, output)
    if plan.mode == "crop":
        return 1.0
    _, _, width, height = plan.target_box
    share = min(width / output[0], height / output[1]) * _FILL_SLACK
    return min(max(share, 1.0 / PLATE_LIMIT), 1.0)


def move_limit(cover: float) -> float:
    """The tightest framing a move may reach inside an area covering `cover` of the plate."""
    return max(1.0, min(MOVE_LIMIT, PLATE_LIMIT * cover))


def onto(camera: Camera, cover: float) -> Camera:
    """A framing of the frame-shaped area covering `cover` of the plate, centred, as a
    framing of the plate."""
    if cover == 1.0:
        return camera
    return Camera(camera.zoom / cover, camera.x * cover, camera.y * cover)


def path_keys(seconds: float, keys_per_second: int = _KEYS_PER_SECOND) -> int:
    """How many keys a keyed path over a shot of `seconds` has."""
    return min(max(round(seconds * keys_per_second) + 1, 48), 361)


def _sampled(
    kind: MotionKind,
    place: Callable[[float], Camera],
    seconds: float,
    keys_per_second: int = _KEYS_PER_SECOND,
) -> MotionPath:
    times = np.linspace(0.0, 1.0, path_keys(seconds, keys_per_second))
    return MotionPath(kind, tuple(place(float(t)) for t in times), keyed=True)


def _smooth(p: float) -> float:
    return p * p * (3 - 2 * p)
