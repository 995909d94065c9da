"""Chat formatting of a (prompt, response) pair, chosen explicitly in the config.

``template: tokenizer`` uses the tokenizer's own chat template and fails if it has none; a named template
(``tulu``, ``tulu_fastchat``, ``plain``) is used as written. A template is never silently swapped for another.

``template: rewardbench`` renders a reward model's input as rewardbench and RM-Bench do (allenai/reward-bench
v0.1.4 ``rewardbench/rewardbench.py`` and ``utils.py:272-285``, ``prepare_dialogue_from_tokenizer``
``utils.py:809-893``, ``prepare_dialogue`` ``:896``; RM-Bench ``scripts/run_rm.py``): the branch is chosen from the
tokenizer when the formatter is built and recorded in :attr:`ChatFormatter.resolved`:

- the tokenizer has a chat template: the conversation rendered by it, unstripped (so a Tulu-2 template ends
  ``...{response}</s>\n``), tokenised **with** the tokenizer's special tokens; a BOS doubled by that (template and
  tokenizer both writing one) is dropped, which is what rewardbench's pipeline does by masking the first one
  (``models/pipeline.py:43-72``: with rotary positions, masking the first of two leading tokens and dropping it
  give the same scores);
- it has none: fastchat's ``tulu`` conversation (``<|user|>\n{prompt}\n<|assistant|>\n{response}\n``, earlier
  assistant turns without EOS) with the tokenizer's EOS appended (rewardbench sets ``add_eos_token``), so the text
  ends ``...{response}\n</s>`` (``tulu_fastchat``).

The formatter returns the prompt part (everything before the first response token) and the full text; the
implicit-reward scorer needs the boundary to sum log-probs over response tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmlab.utils.hashing import stable_hash

# Named templates: (prefix with {prompt}, suffix appended after the response, add the tokenizer's special tokens).
# tulu: the Tulu-2 / Tulu-2.5 format (open-instruct; RewardBench's and RM-Bench's "tulu" template), + EOS.
NAMED_TEMPLATES: dict[str, dict] = {
    "tulu": {
        "prefix": "<|user|>\n{prompt}\n<|assistant|>\n",
        "suffix": "{eos}",
        "turn_sep": "\n",
        "add_special_tokens": True,
    },
    # fastchat's "tulu" conversation (SeparatorStyle.ADD_NEW_LINE_SINGLE, sep "\n") with EOS appended after it, as
    # rewardbench scores a classifier whose tokenizer has no chat template; earlier assistant turns end with "\n" only
    "tulu_fastchat": {
        "prefix": "<|user|>\n{prompt}\n<|assistant|>\n",
        "suffix": "\n{eos}",
        "history_suffix": "\n",
        "add_special_tokens": True,
    },
    # raw text, for models trained without a chat format (e.g. encoders used as classifiers)
    "plain": {"prefix": "{prompt}\n", "suffix": "", "add_special_tokens": True},
}
TEMPLATES = ("tokenizer", "rewardbench", *NAMED_TEMPLATES)

# How the named templates render as rewardbench's DPO scorer sees them (:meth:`ChatFormatter.format_user_only`):
# (the assistant header at the end of the prefix, the text after the response). For tulu these are the Tulu-2.5
# tokenizers' own chat template ("<|assistant|>\n" + content + eos_token + "\n"), which rewardbench applies to those
# models; for tulu_fastchat fastchat's text, which has no EOS (the DPO scorer appends its own).
USER_ONLY_RENDERING: dict[str, tuple[str, str]] = {
    "tulu": ("<|assistant|>\n", "{eos}\n"),
    "tulu_fastchat": ("<|assistant|>\n", "\n"),
    "plain": ("", ""),
}


Prompt = str | tuple  # a user message, or a tuple of (role, content) turns ending with the user's


@dataclass(frozen=True)
class FormattedPair:
    prefix: str  # text up to (not including) the first response token
    text: str  # the whole formatted conversation; starts with ``prefix``


class ChatFormatter:
    """Formats single-turn conversations for one tokenizer.

    :param tokenizer: a Hugging Face tokenizer.
    :param template: ``tokenizer`` (the tokenizer's own chat template) or a key of :data:`NAMED_TEMPLATES`.
    :param system_prompt: optional system message (tokenizer templates only); ``None`` keeps the template's default.
    """

    def __init__(self, tokenizer, template: str = "tokenizer", system_prompt: str | None = None):
        self.tokenizer = tokenizer
        self.requested = template
        self.dedup_bos = False  # drop the first of two leading BOS tokens (``rewardbench`` on a tokenizer template)
        if template == "rewardbench":  # rewardbench's branch, chosen from the tokenizer as it chooses
            if getattr(tokenizer, "chat_template", None):
                template, self.dedup_bos = "tokenizer", True
            else:
                template = "tulu_fastchat"
        self.template = template
        self.system_prompt = system_prompt
        if self.dedup_bos:
            self.add_special_tokens = True  # rewardbench's pipeline tokenises the rendered text with them
        elif template == "tokenizer":
            if not getattr(tokenizer, "chat_template", None):
                raise ValueError(
                    f"chat template 'tokenizer' requested but tokenizer {tokenizer.name_or_path!r} has no chat "
                    f"template; set model.chat_template to one of {sorted(NAMED_TEMPLATES)}"
                )
            self.add_special_tokens = False  # the template writes its own special tokens
        elif template in NAMED_TEMPLATES:
            if system_prompt is not None:
                raise ValueError(f"system_prompt is only supported with the tokenizer's own template, not {template!r}")
            self.add_special_tokens = NAMED_TEMPLATES[template]["add_special_tokens"]
        else:
            raise ValueError(f"unknown chat template {template!r}; use one of {list(TEMPLATES)}")

    @property
    def resolved(self) -> str:
        """The rendering in use: the requested template, or for ``rewardbench`` the branch it took."""
        if self.requested != "rewardbench":
            return self.template
        return "rewardbench:tokenizer" if self.template == "tokenizer" else f"rewardbench:{self.template}"

    def token_ids(self, text: str) -> list[int]:
        """``text`` as the model reads it: tokenised with the template's special-token rule, a doubled leading BOS
        dropped under ``rewardbench`` (see the module docstring)."""
        ids = self.tokenizer(text, add_special_tokens=self.add_special_tokens)["input_ids"]
        bos = self.tokenizer.bos_token_id
        if self.dedup_bos and bos is not None and ids[:2] == [bos, bos]:
            ids = ids[1:]
        return ids

    @property
    def fingerprint(self) -> str:
        """Identifies the formatting: template name and text, system prompt, special-token handling."""
        spec = self.tokenizer.chat_template if self.template == "tokenizer" else NAMED_TEMPLATES[self.template]
        parts = [self.template, spec, self.system_prompt, self.add_special_tokens]
        return stable_hash(parts + ["dedup_bos"] if self.dedup_bos else parts)  # older fingerprints unchanged

    def _messages(self, prompt: Prompt) -> list[dict]:
        msgs = [] if self.system_prompt is None else [{"role": "system", "content": self.system_prompt}]
        if isinstance(prompt, str):
            return msgs + [{"role": "user", "content": prompt}]
        return msgs + [{"role": role, "content": content} for role, content in prompt]

    def _named_prefix(self, prompt: Prompt) -> str:
        spec = NAMED_TEMPLATES[self.template]
        if isinstance(prompt, str):
            return spec["prefix"].format(prompt=prompt)
        # earlier turns of a multi-turn prompt: user turns as the prefix writes them, assistant turns as responses
        eos = self.tokenizer.eos_token or ""
        *history, (role, last) = prompt
        if role != "user":
            raise ValueError(f"a multi-turn prompt must end with a user turn, got {role!r}")
        text = ""
        for role, content in history:
            if role == "user":
                text += spec["prefix"].format(prompt=content)
            elif role == "assistant":
                end = (
                    spec["history_suffix"] if "history_suffix" in spec else spec["suffix"] + spec.get("turn_sep", "\n")
                )
                text += content + end.format(eos=eos)
            else:
                raise ValueError(f"template {self.template!r} has no {role!r} turns")
        return text + spec["prefix"].format(prompt=last)

    def _tokenizer_pair(self, prompt: Prompt, response: str, *, generation_prompt: bool) -> FormattedPair:
        """The tokenizer's template: the prompt alone (with or without the assistant header) and the whole
        conversation, which must start with it."""
        msgs = self._messages(prompt)
        prefix = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation_prompt)
        text = self.tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": response}], tokenize=False)
        if not text.startswith(prefix):
            raise ValueError(
                f"the chat template of {self.tokenizer.name_or_path!r} does not render the prompt as a prefix of the "
                "conversation, so response tokens cannot be located; choose a named template"
            )
        return FormattedPair(prefix=prefix, text=text)

    def format(self, prompt: Prompt, response: str) -> FormattedPair:
        """Format one conversation: ``prompt`` is a user message or a tuple of ``(role, content)`` turns."""
        if self.template == "tokenizer":
            return self._tokenizer_pair(prompt, response, generation_prompt=True)
        spec = NAMED_TEMPLATES[self.template]
        prefix = self._named_prefix(prompt)
        eos = self.tokenizer.eos_token or ""
        return FormattedPair(prefix=prefix, text=prefix + response + spec["suffix"].format(eos=eos))

    def format_user_only(self, prompt: Prompt, response: str) -> FormattedPair:
        """The split rewardbench's DPO scorer makes (allenai/reward-bench@v0.1.4 ``rewardbench/utils.py``
        ``prepare_dialogue_from_tokenizer``, used by RM-Bench's ``scripts/run_dpo.py``): ``prefix`` is the prompt
        rendered on its own, *without* the assistant header (no ``add_generation_prompt``), and ``text`` the whole
        conversation, so the header and whatever the template writes after the response fall on the response side."""
        if self.template == "tokenizer":
            return self._tokenizer_pair(prompt, response, generation_prompt=False)
        header, end = USER_ONLY_RENDERING[self.template]
        prefix = self._named_prefix(prompt)
        text = prefix + response + end.format(eos=self.tokenizer.eos_token or "")
        return FormattedPair(prefix=prefix[: len(prefix) - len(header)], text=text)
