"""Reading the prompt for the diffusion model: plain words for mentions, and frame pins.

The text encoder (UMT5) has never seen `@Image1`; it understands "the first reference
image". Mentions are rewritten into such words, in Chinese when the prompt is Chinese.
Phrases like "@Image1 as the first frame" or "@Image2 作为尾帧" pin that image as the
video's opening or closing frame, which the engine turns into conditioning frames; the
request's own `first_frame` / `last_frame` pin in their place. Mentions and pins are read
by `r2v.grammar`, as every engine reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from r2v.engines.base import EngineRequest
from r2v.grammar import Mention, find_mentions, frame_pins

NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
"""Wan's own default negative prompt (its examples use it; the model was tuned with it)."""

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Pins:
    """0-based indices of the images pinned as the first and the last frame, if any."""

    first: int | None = None
    last: int | None = None

    @property
    def images(self) -> set[int]:
        return {index for index in (self.first, self.last) if index is not None}


def describe(mention: Mention, counts: dict[str, int], chinese: bool) -> str:
    """Plain words for one mention: "the first reference image", "the music", "参考视频"."""
    only = counts.get(mention.kind, 0) <= 1
    number = mention.index
    if chinese:
        nth = "" if only else f"第{number}个"
        return {"image": f"{nth}参考图片", "video": f"{nth}参考视频", "audio": f"{nth}音乐"}[
            mention.kind
        ]
    ordinal = _ORDINALS[number - 1] if number <= len(_ORDINALS) else f"number {number}"
    if mention.kind == "image":
        return f"the {ordinal} reference image"
    if mention.kind == "video":
        return "the reference video" if only else f"the {ordinal} reference video"
    return "the music" if only else f"the {ordinal} music track"


def rewrite_prompt(request: EngineRequest) -> str:
    """The prompt with every `@Image1` / `@Video1` / `@Audio1` replaced by plain words."""
    prompt = request.prompt
    counts = {"image": len(request.images), "video": len(request.videos)}
    counts["audio"] = len(request.audios)
    chinese = bool(_CJK.search(prompt))
    pieces: list[str] = []
    position = 0
    for mention in find_mentions(prompt):
        pieces.append(prompt[position : mention.start])
        pieces.append(describe(mention, counts, chinese))
        position = mention.end
    pieces.append(prompt[position:])
    return re.sub(r"[ \t]{2,}", " ", "".join(pieces)).strip()


def find_pins(request: EngineRequest) -> Pins:
    """Images pinned as the first or last frame: the request's own `first_frame` and
    `last_frame`, else the prompt's wording (`grammar.frame_pins`), end by end.

    An end the prompt gives to a video pins no image: the video takes that end, as in the
    compositor's render, and the model is left free there.
    """
    pinned = frame_pins(
        request.prompt, {"image": len(request.images), "video": len(request.videos)}
    )
    first, last = (
        m.index - 1 if m is not None and m.kind == "image" else None
        for m in (pinned.first, pinned.last)
    )
    return Pins(
        first if request.first_frame is None else request.first_frame,
        last if request.last_frame is None else request.last_frame,
    )


def conditioning_video(request: EngineRequest) -> int | None:
    """The 0-based index of the video the render follows: the first mentioned, else @Video1."""
    for mention in find_mentions(request.prompt, {"video": len(request.videos)}):
        return mention.index - 1
    return 0 if request.videos else None
