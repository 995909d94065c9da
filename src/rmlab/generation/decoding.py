"""A decoding: how many samples of each prompt, greedy or at a temperature, up to how many tokens, stopped where."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decoding:
    """One decoding of every example: ``n`` samples, greedy or at ``temperature`` (nucleus ``top_p`` when below 1)."""

    name: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    do_sample: bool = False
    temperature: float = 0.0
    n: int = 1
    top_p: float = 1.0

    @classmethod
    def from_cfg(cls, d) -> Decoding:
        d = dict(d)
        return cls(
            name=str(d["name"]),
            max_new_tokens=int(d["max_new_tokens"]),
            stop=tuple(d.get("stop") or ()),
            do_sample=bool(d.get("do_sample", False)),
            temperature=float(d.get("temperature", 0.0)),
            n=int(d.get("n", 1)),
            top_p=float(d.get("top_p", 1.0)),
        )

    def describe(self) -> dict:
        out = {
            "name": self.name,
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "do_sample": self.do_sample,
            "temperature": self.temperature,
            "n": self.n,
        }
        if self.top_p != 1.0:  # only when set, so that the keys of decodings without it stay as they were
            out["top_p"] = self.top_p
        return out
