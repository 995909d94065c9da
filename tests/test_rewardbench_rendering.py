"""``model.chat_template=rewardbench``: a classifier's input rendered, tokenised and read as rewardbench 0.1.4 (and
RM-Bench's ``scripts/run_rm.py``, which copies it) do, in both of its branches, against the peer's own code.

The oracle is rewardbench itself: its dialogue builders (``prepare_dialogue_from_tokenizer``, ``prepare_dialogue``
with fastchat's ``tulu`` conversation) render the texts, and its ``RewardBenchPipeline`` (left padding, the doubled
BOS masked) scores them with the tokenizer set up as ``rewardbench.py`` sets it (``add_eos_token`` when the tokenizer
has no chat template). Which branch the released Tulu 2.5 RMs take depends on their Hub tokenizer configs; both are
tested here on SmolLM2's real tokenizer, with and without a chat template.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from rmlab.models.chat_format import ChatFormatter
from rmlab.scoring.peers import rewardbench_classifier_scores, rewardbench_functions
from rmlab.scoring.scorers import ClassifierScorer, ImplicitRewardScorer
from tests.helpers import tolerances as tol
from tests.test_scorers import TULU25_TEMPLATE

pytestmark = pytest.mark.numeric  # also run under ATEN_CPU_CAPABILITY=default (.ci/run)

EXAMPLES = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "Five, I think."},
    {"prompt": "Name a prime above ten.", "chosen": "Eleven is prime.", "rejected": "Twelve."},
    {  # multi-turn: rewardbench alternates user / assistant over the prompt's messages
        "prompt": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Boil an egg?"},
        ],
        "chosen": "Nine minutes in boiling water.",
        "rejected": "Eggs come from hens.",
    },
]


def _ours(example) -> str | tuple:
    p = example["prompt"]
    return p if isinstance(p, str) else tuple((m["role"], m["content"]) for m in p)


def _rewardbench_texts(example, tokenizer) -> tuple[str, str]:
    """rewardbench's own rendering: ``prepare_dialogue_from_tokenizer`` when the tokenizer has a chat template,
    else ``prepare_dialogue`` with fastchat's ``tulu`` conversation (``utils.py:272-285``)."""
    from fastchat.conversation import Conversation, get_conv_template

    fns = rewardbench_functions(
        "utils.py",
        ["prepare_dialogue_from_tokenizer", "prepare_dialogue"],
        {"Dict": dict, "Any": Any, "PreTrainedTokenizer": object, "Conversation": Conversation},
    )
    row = copy.deepcopy(example)
    if getattr(tokenizer, "chat_template", None):
        row = fns["prepare_dialogue_from_tokenizer"](row, tokenizer)
    else:
        row = fns["prepare_dialogue"](row, get_conv_template("tulu"))
    return row["text_chosen"], row["text_rejected"]


@pytest.fixture
def classifier(tiny_classifier_dir):
    tok = AutoTokenizer.from_pretrained(tiny_classifier_dir)
    assert tok.pad_token_id != tok.eos_token_id  # as the Tulu RMs' "<pad>": both read the last token
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir, dtype=torch.float32).eval()
    return model, tok


def _bound(model, texts, tok, scores) -> float:
    """Two forwards of the same tokens that differ in padding, masking and position offset (rotary: the same
    maths), so in reduction order only (tests/helpers/tolerances.py)."""
    longest = max(len(tok(t)["input_ids"]) for t in texts) + 2
    return tol.forward_diff(AutoConfig.from_pretrained(model.name_or_path), longest, "classifier",
                            magnitude=float(np.abs(scores).max()))  # fmt: skip


def _compare(model, tok, fmt):
    """Our scorer (``fmt``) and rewardbench's pipeline on the same examples: same token ids, same scores."""
    texts = {}
    for n, ex in enumerate(EXAMPLES):
        for side, text in enumerate(_rewardbench_texts(ex, tok)):
            texts[(n, side, 0)] = text
    scorer = ClassifierScorer(model, tok, fmt, max_length=2048, device="cpu")
    ours_enc = {(n, side, 0): scorer.encode(_ours(ex), ex[("chosen", "rejected")[side]])
                for n, ex in enumerate(EXAMPLES) for side in (0, 1)}  # fmt: skip
    rb_tok = copy.deepcopy(tok)
    if not getattr(tok, "chat_template", None):
        rb_tok.add_eos_token = True  # rewardbench.py:460-461: "make the RM tokenizer output an EOS token"
    for key, text in texts.items():
        theirs_ids = rb_tok(text)["input_ids"]
        bos = tok.bos_token_id
        if theirs_ids[:2] == [bos, bos]:  # the pipeline masks the first of a doubled BOS (pipeline.py:43-72)
            theirs_ids = theirs_ids[1:]
        assert ours_enc[key].input_ids == theirs_ids, key
    theirs = rewardbench_classifier_scores(model, rb_tok, texts, len(EXAMPLES), batch_size=8, max_length=2048)
    ours = scorer([ours_enc[(n, side, 0)] for n in range(len(EXAMPLES)) for side in (0, 1)]).reshape(-1, 2)
    np.testing.assert_allclose(ours, theirs[:, :, 0], atol=_bound(model, texts.values(), tok, theirs), rtol=0)
    assert len(set(np.round(ours.reshape(-1), 5))) == ours.size  # a real head: distinct scores, a real comparison
    return texts


def test_without_a_chat_template_fastchats_tulu_with_eos_as_rewardbench(classifier):
    model, tok = classifier
    tok.chat_template = None
    fmt = ChatFormatter(tok, "rewardbench")
    assert fmt.resolved == "rewardbench:tulu_fastchat"
    texts = _compare(model, tok, fmt)
    assert texts[(0, 0, 0)] == "<|user|>\nWhat is 2+2?\n<|assistant|>\n4\n"  # fastchat's text; the EOS is a token
    assert fmt.format("What is 2+2?", "4").text == "<|user|>\nWhat is 2+2?\n<|assistant|>\n4\n" + tok.eos_token
    # the lab's own tulu template (the Tulu-2 training format) ends at EOS, without the newline: another rendering
    assert ChatFormatter(tok, "tulu").format("What is 2+2?", "4").text.endswith("4" + tok.eos_token)


def test_with_a_chat_template_its_rendering_and_a_doubled_bos_dropped_as_rewardbench_masks_it(classifier):
    """A Tulu-2.5 style template (unstripped: the text ends ``</s>\\n``), once as it is and once writing its own BOS
    on a tokenizer that adds one too: rewardbench's pipeline masks the first of the two, we drop it."""
    model, tok = classifier
    tok.chat_template = TULU25_TEMPLATE
    fmt = ChatFormatter(tok, "rewardbench")
    assert fmt.resolved == "rewardbench:tokenizer" and fmt.add_special_tokens
    texts = _compare(model, tok, fmt)
    assert texts[(0, 0, 0)].endswith("4" + tok.eos_token + "\n")
    doubled = copy.deepcopy(tok)
    doubled.chat_template = "{{ bos_token }}" + TULU25_TEMPLATE
    doubled.add_bos_token = True
    ids = ChatFormatter(doubled, "rewardbench").token_ids(_rewardbench_texts(EXAMPLES[0], doubled)[0])
    assert doubled(_rewardbench_texts(EXAMPLES[0], doubled)[0])["input_ids"][:2] == [doubled.bos_token_id] * 2
    assert ids[0] == doubled.bos_token_id and ids[1] != doubled.bos_token_id  # one BOS left
    _compare(model, doubled, ChatFormatter(doubled, "rewardbench"))


def test_rewardbench_rendering_has_its_own_fingerprint(tokenizer):
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    fps = {
        ChatFormatter(tokenizer, "tokenizer").fingerprint,
        ChatFormatter(tokenizer, "rewardbench").fingerprint,
        ChatFormatter(plain, "rewardbench").fingerprint,
        ChatFormatter(plain, "tulu").fingerprint,
    }
    assert len(fps) == 4  # a score cache never mixes two renderings


def test_dpo_scorer_on_the_fastchat_branch_reads_fastchats_text(tokenizer):
    """rewardbench's DPO path renders with the same branches; on fastchat's text the scorer adds the one EOS
    itself (rewardbench/dpo.py), so the rendered text must not carry one."""
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    fmt = ChatFormatter(plain, "rewardbench")
    pair = fmt.format_user_only("What is 2+2?", "4")
    assert (pair.prefix, pair.text) == ("<|user|>\nWhat is 2+2?\n", "<|user|>\nWhat is 2+2?\n<|assistant|>\n4\n")
    enc = ImplicitRewardScorer.__new__(ImplicitRewardScorer)
    enc.tokenizer, enc.formatter, enc.max_length = plain, fmt, 2048
    ids = enc._encode_rewardbench("What is 2+2?", "4").input_ids
    assert ids.count(plain.eos_token_id) == 1 + (plain.bos_token_id == plain.eos_token_id)
