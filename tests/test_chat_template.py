"""Instruct models: prompts through the tokenizer's chat template (teacher and student
alike), training on the assistant turn only, generation ended at the end-of-turn token,
and ``world.chat_template: false`` back to raw text. A tiny ChatML tokenizer and Llama
pair built in-process (CPU, no downloads)."""

from __future__ import annotations

import asyncio
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import save_model_pair

from read_distill import train
from read_distill.backends.hf import HFStudent, HFTeacher, _eos_ids, generate_tokens, load_tokenizer
from read_distill.config import Config, TrainConfig
from read_distill.ledger import Ledger
from read_distill.types import Example

pytestmark = pytest.mark.tiny

WORDS = "the cat dog owl sees likes red blue one two three four five plus is what".split()
SYSTEM = "You are a helpful assistant."
# ChatML (Qwen's turn format) with a default system message and a <bos> the template writes
# itself (as Llama's and Gemma's do). `{% generation %}` marks the assistant's part, so
# transformers' own assistant mask can check the training labels. The newline after
# <|im_end|> is a string literal: the template environment eats one after a block tag.
TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] != 'system' %}<|im_start|>system\n" + SYSTEM + "<|im_end|>\n{% endif %}"
    "{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "<|im_start|>assistant\n{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}{{ '\\n' }}"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PROMPTS = ["what is one plus two", "the cat sees the owl", "red blue", "what likes the big dog"]


def make_tokenizer():
    """A byte-level BPE whose tokenizer adds <bos> to raw text (as Llama's does), with the
    ChatML turn tokens as special tokens and :data:`TEMPLATE` as its chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(300)] + [f"system user assistant {SYSTEM}"] * 5
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["</s>", "<s>", "<pad>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(lines, trainer)
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bpe.token_to_id("<s>"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>", bos_token="<s>", pad_token="<pad>")
    tok.chat_template = TEMPLATE
    return tok


@pytest.fixture(scope="module")
def chat_models(tmp_path_factory):
    """Teacher (2 layers) and student (1 layer) directories sharing the ChatML tokenizer."""
    return save_model_pair(make_tokenizer(), tmp_path_factory.mktemp("chat-models"))


def _im_end(tok) -> int:
    return tok.convert_tokens_to_ids("<|im_end|>")


def test_the_prompt_is_a_user_turn_and_the_completion_ends_the_assistant_turn(chat_models):
    tok = load_tokenizer(chat_models["student"])  # the template survives save and load
    prompt = PROMPTS[0]
    ids = train.encode_prompt(tok, prompt)
    assert ids == tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, return_dict=False)
    assert tok.decode(ids) == (
        f"<s><|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    )
    # One <bos>: the template's; the tokenizer's own (raw text gets one) is not added again.
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert train.encode_prompt(tok, prompt, chat_template=False) == tok(prompt)["input_ids"]
    # A template that writes no <bos> (Qwen's) gets none: the template decides.
    qwen = load_tokenizer(chat_models["student"])
    qwen.chat_template = TEMPLATE.removeprefix("{{ bos_token }}")
    assert tok.bos_token_id not in train.encode_prompt(qwen, prompt)

    # The assistant turn ends at <|im_end|>; the newline after it is never generated, nor trained.
    text_ids = tok(" three", add_special_tokens=False)["input_ids"]
    assert train.end_of_turn(tok) == [_im_end(tok)]
    assert train.encode_completion(tok, " three") == text_ids + [_im_end(tok)]
    assert train.encode_completion(tok, " three", eos=False) == text_ids

    # A template whose assistant turn closes with no special token: EOS, as without one.
    plain = load_tokenizer(chat_models["student"])
    plain.chat_template = "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    assert train.end_of_turn(plain) == []
    assert train.encode_completion(plain, " three") == text_ids + [tok.eos_token_id]

    # Probes and evaluations charge the framing the model reads too (not the <bos>).
    assert train.count_prompt_tokens(tok, PROMPTS[:2]) == sum(len(train.encode_prompt(tok, p)) - 1 for p in PROMPTS[:2])
    raw = load_tokenizer(chat_models["student"], chat_template=False)
    assert train.count_prompt_tokens(raw, PROMPTS[:2]) == train.count_tokens(raw, PROMPTS[:2])


def test_the_training_labels_are_the_assistant_turn_exactly(chat_models):
    """The collated batch's labels cover the assistant's content and <|im_end|>, nothing of
    the system, user or generation-prompt part: transformers' assistant mask of the same
    conversation, whose token ids are the training sequence."""
    tok = load_tokenizer(chat_models["student"])
    completions = [" three", " it likes the red dog", " blue", " one two #### 3"]
    items = [
        train._Item("math", train.encode_prompt(tok, p), train.encode_completion(tok, c), None)
        for p, c in zip(PROMPTS, completions, strict=True)
    ]
    batch = train._collate(items, tok.pad_token_id, torch.device("cpu"))
    for b, (item, prompt, completion) in enumerate(zip(items, PROMPTS, completions, strict=True)):
        chat = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        full = tok.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)
        n = item.length
        assert batch["input_ids"][b, :n].tolist() == full["input_ids"][:n]
        assert tok.decode(full["input_ids"][n:]) == "\n"  # the template's newline after <|im_end|>
        # targets[t] is what position t predicts: token t + 1.
        labelled = [t + 1 for t in range(batch["targets"].shape[1]) if batch["targets"][b, t] != train.IGNORE_INDEX]
        assert labelled == [t for t in range(n) if full["assistant_masks"][t]]
        assert [batch["input_ids"][b, t].item() for t in labelled] == item.label_ids
        assert tok.decode(item.label_ids) == completion + "<|im_end|>"


def _ce(model, prompt: list[int], labels: list[int]) -> torch.Tensor:
    """Per-token cross-entropy of ``prompt + labels`` at every position after the first."""
    ids = torch.tensor([prompt + labels])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    return F.cross_entropy(logits, ids[0, 1:], reduction="none")


def test_fit_trains_on_the_assistant_turn_only(chat_models):
    """A real ``fit``: its loss is the mean cross-entropy over the assistant tokens alone (the
    template's system/user/generation-prompt tokens carry none), and those are what it lowers."""
    student = HFStudent.from_pretrained(
        chat_models["student"], dtype="float32", device="cpu", quiet=True,
        config=TrainConfig(batch_size=8, lr=3e-3, schedule="constant", warmup_frac=0.0, max_seq_tokens=512),
    )
    tok = student.tokenizer
    examples = [
        Example(prompt=p, completion=c, capability="math", prompt_tokens=0, completion_tokens=0)
        for p, c in zip(PROMPTS, [" three", " it likes the red dog", " blue", " one two"], strict=True)
    ]
    encoded = [(train.encode_prompt(tok, e.prompt), train.encode_completion(tok, e.completion)) for e in examples]
    before = [_ce(student.model, p, c) for p, c in encoded]
    assistant = lambda ce, p: ce[len(p) - 1 :]  # noqa: E731  # positions predicting the labels
    want = torch.cat([assistant(ce, p) for ce, (p, _) in zip(before, encoded, strict=True)]).mean().item()
    whole = torch.cat(before).mean().item()

    labels = sum(len(c) for _, c in encoded)
    ledger = Ledger(None, 10 * labels, "train")
    first = student.fit(examples, labels, ledger, round=1)
    # One optimizer step over all four; its loss is taken before the step.
    assert first.optimizer_steps == 1 and first.billable_tokens == labels
    assert first.trained_tokens == sum(len(p) + len(c) for p, c in encoded)  # templated prompts charged
    assert first.steps[0][1] == pytest.approx(want, rel=1e-5)
    assert abs(want - whole) > 1e-3  # the prompt part would have changed it
    for _ in range(5):
        student.fit(examples, labels, ledger, round=1)
    after = [_ce(student.model, p, c) for p, c in encoded]
    trained = torch.cat([assistant(ce, p) for ce, (p, _) in zip(after, encoded, strict=True)]).mean().item()
    assert trained < want - 0.5


def _forcing_im_end(model, tok, at: int):
    """``model`` with a hook that makes <|im_end|> the argmax of the ``at``-th generated
    position (and never lets it pick EOS); returns a reset function."""
    calls = [0]
    im_end, eos = _im_end(tok), tok.eos_token_id

    def hook(_module, _inputs, logits):
        calls[0] += 1
        logits = logits.clone()
        logits[..., eos] = float("-inf")
        if calls[0] == at:
            logits[:, -1, im_end] = 1e4
        return logits

    model.lm_head.register_forward_hook(hook)
    return lambda: calls.__setitem__(0, 0)


def test_generation_stops_at_the_end_of_turn_token(chat_models):
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer(chat_models["teacher"])
    model = AutoModelForCausalLM.from_pretrained(chat_models["teacher"], dtype=torch.float32).eval()
    assert model.generation_config.eos_token_id == tok.eos_token_id  # the model's config does not name <|im_end|>
    assert _eos_ids(model, tok) == sorted({tok.eos_token_id, _im_end(tok)})
    reset = _forcing_im_end(model, tok, at=3)
    (c,) = generate_tokens(model, tok, [PROMPTS[0]], max_new_tokens=8)
    assert c.stopped and len(c.token_ids) == 3 and c.token_ids[-1] == _im_end(tok)
    assert "<|im_end|>" not in c.text and c.text == tok.decode(c.token_ids[:-1], skip_special_tokens=True)
    reset()
    gen = HFTeacher(model, tok, name="chat").generate([PROMPTS[0]], {"max_new_tokens": 8})[0]
    assert (gen.text, gen.prompt_tokens, gen.completion_tokens) == (c.text, len(train.encode_prompt(tok, PROMPTS[0])), 3)

    # Raw text (the template cleared): <|im_end|> is an ordinary token; generation goes on.
    raw = load_tokenizer(chat_models["teacher"], chat_template=False)
    assert _eos_ids(model, raw) == [tok.eos_token_id]
    reset()
    (c,) = generate_tokens(model, raw, [PROMPTS[0]], max_new_tokens=8)
    assert c.prompt_ids == raw(PROMPTS[0])["input_ids"]
    assert not c.stopped and len(c.token_ids) == 8 and c.token_ids[2] == _im_end(tok)


def test_world_chat_template_false_feeds_raw_text(chat_models):
    assert Config().world.chat_template is True
    assert Config.model_validate({"world": {"chat_template": False}}).world.chat_template is False
    teacher = HFTeacher.from_pretrained(chat_models["teacher"], dtype="float32", device="cpu", chat_template=False)
    student = HFStudent.from_pretrained(chat_models["student"], dtype="float32", device="cpu", chat_template=False, quiet=True)
    for tok in (teacher.tokenizer, student.tokenizer):
        assert tok.chat_template is None and not train.uses_chat_template(tok)
        assert train.encode_prompt(tok, PROMPTS[1]) == tok(PROMPTS[1])["input_ids"]
        assert train.encode_completion(tok, " blue") == tok(" blue", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    gen = teacher.generate([PROMPTS[1]], {"max_new_tokens": 2})[0]
    assert gen.prompt_tokens == len(teacher.tokenizer(PROMPTS[1])["input_ids"])
    # The default keeps the template, for both.
    templated = HFStudent.from_pretrained(chat_models["student"], dtype="float32", device="cpu", quiet=True)
    assert templated.tokenizer.chat_template == TEMPLATE
    assert HFTeacher.from_pretrained(chat_models["teacher"], dtype="float32", device="cpu").tokenizer.chat_template == TEMPLATE


def _serve(teacher: HFTeacher, *calls):
    """Run ``calls`` (functions of the server returning coroutines) against an in-process
    ``TeacherServer`` of ``teacher`` with its batcher running; their results in order."""
    from read_distill.serve.app import TeacherServer

    server = TeacherServer(teacher)

    async def main():
        worker = asyncio.create_task(server.batcher.run())
        try:
            return [await call(server) for call in calls]
        finally:
            worker.cancel()

    return asyncio.run(main())


def test_the_served_teacher_encodes_with_encode_prompt(chat_models):
    """/v1/completions feeds a string prompt as ``train.encode_prompt`` does (the echoed
    prompt tokens are its ids); /v1/chat/completions with that prompt as one user message is
    the same generation; served raw (``--no-chat-template``), the prompt goes raw and chat is refused."""
    from fastapi import HTTPException

    from read_distill.serve.app import ChatRequest, CompletionRequest

    teacher = HFTeacher.from_pretrained(chat_models["teacher"], name="t", dtype="float32", device="cpu")
    tok = teacher.tokenizer
    prompt = PROMPTS[3]
    ids = train.encode_prompt(tok, prompt)
    completion = CompletionRequest(model="t", prompt=prompt, max_tokens=4, temperature=0.0, logprobs=1, echo=True, return_tokens_as_token_ids=True)
    chat = ChatRequest(model="t", messages=[{"role": "user", "content": prompt}], max_tokens=4, temperature=0.0)
    done, chatted = _serve(teacher, lambda s: s.completions(completion), lambda s: s.chat(chat))
    assert done["usage"]["prompt_tokens"] == len(ids)
    assert done["choices"][0]["logprobs"]["tokens"][: len(ids)] == [f"token_id:{i}" for i in ids]
    assert chatted["usage"] == done["usage"]
    local = teacher.generate([prompt], {"max_new_tokens": 4})[0]
    assert chatted["choices"][0]["message"]["content"] == local.text
    assert done["choices"][0]["text"] == prompt + local.text  # echo: the prompt as sent

    raw = HFTeacher.from_pretrained(chat_models["teacher"], name="t", dtype="float32", device="cpu", chat_template=False)
    plain = CompletionRequest(model="t", prompt=prompt, max_tokens=0)
    (done,) = _serve(raw, lambda s: s.completions(plain))
    assert done["usage"]["prompt_tokens"] == len(tok(prompt)["input_ids"])
    with pytest.raises(HTTPException, match="no chat template"):
        _serve(raw, lambda s: s.chat(chat))


def test_a_served_instruct_teacher_equals_the_in_process_one(chat_models):
    """Over HTTP (``serve-teacher`` as a subprocess, the run's ``OpenAITeacher``), the
    completions endpoint and the chat endpoint (the prompt as one user message) give what
    the loaded teacher gives: text, token counts and top-k records."""
    pytest.importorskip("openai")
    from conftest import start_server

    from read_distill.backends.openai_api import OpenAITeacher

    local_teacher = HFTeacher.from_pretrained(chat_models["teacher"], dtype="float32", device="cpu")
    sampling = {"max_new_tokens": 5, "top_logprobs": 2}
    local = local_teacher.generate(PROMPTS[:2], sampling)
    proc, url = start_server(chat_models["teacher"])
    try:
        served = {api: OpenAITeacher(url, chat_models["teacher"], api=api).generate(PROMPTS[:2], sampling) for api in ("completions", "chat")}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for api, gens in served.items():
        assert [(g.text, g.prompt_tokens, g.completion_tokens) for g in gens] == [
            (g.text, g.prompt_tokens, g.completion_tokens) for g in local
        ], api
        for a, b in zip(local, gens, strict=True):
            assert [sorted(p) for p in a.top_logprobs] == [sorted(p) for p in b.top_logprobs]
            for pa, pb in zip(a.top_logprobs, b.top_logprobs, strict=True):
                assert [pb[k] for k in sorted(pa)] == pytest.approx([pa[k] for k in sorted(pa)], abs=1e-5)
    assert all(g.prompt_tokens == len(train.encode_prompt(local_teacher.tokenizer, p)) for g, p in zip(local, PROMPTS, strict=False))
