"""The student loop and the HF backends on tiny Llama models built in-process (CPU, no downloads)."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import warnings

import pytest
import torch

from read_distill import train
from read_distill.backends.hf import HFStudent, HFTeacher
from read_distill.config import TrainConfig
from read_distill.ledger import Ledger
from read_distill.types import Example

pytestmark = pytest.mark.tiny

WORDS = "the cat dog owl sees likes helps red blue green big small one two three four five plus minus is".split()


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(0)
    lines = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + f" #### {rng.randint(0, 99)}"
        for _ in range(400)
    ]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    # EOS gets id 0, so a model with all-equal logits ends at once (argmax takes the first id).
    specials = ["</s>", "<s>", "<pad>"]
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(lines, trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bpe.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>", bos_token="<s>", pad_token="<pad>")


def make_model(tokenizer, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def make_examples(n: int, seed: int = 1) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        rationale = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9)))
        out.append(
            Example(
                prompt=f"{rng.choice(WORDS)} {a} plus {b} is",
                completion=f" {rationale} {a} plus {b} #### {a + b}",
                capability="math" if i % 2 else "reasoning",
                prompt_tokens=0,
                completion_tokens=0,
            )
        )
    return out


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def cost(tokenizer, ex: Example, ledger: Ledger, config: TrainConfig) -> int:
    labels = train.encode_completion(tokenizer, train.select_text(ex, config.signal, config.answer_marker))
    return ledger.billable("train", len(train.encode_prompt(tokenizer, ex.prompt)), len(labels))


# -- losses against explicit loops ----------------------------------------------------------
def naive_loss(student, teacher, tokenizer, examples, alpha, T, topk_of=None) -> float:
    """Mean over label tokens of alpha*T^2*KL + (1-alpha)*CE, one position and one vocab id at a time."""
    total, count = 0.0, 0
    for i, ex in enumerate(examples):
        prompt = train.encode_prompt(tokenizer, ex.prompt)
        labels = train.encode_completion(tokenizer, ex.completion)
        ids = torch.tensor([prompt + labels])
        with torch.no_grad():
            s_all = student(input_ids=ids).logits[0].tolist()
            t_all = teacher(input_ids=ids).logits[0].tolist()
        for j, target in enumerate(labels):
            s, t = s_all[len(prompt) + j - 1], t_all[len(prompt) + j - 1]
            log_z = math.log(sum(math.exp(x) for x in s))
            ce = log_z - s[target]
            if topk_of is not None:
                support = list(topk_of[i][j].keys())
                t_scaled = [topk_of[i][j][v] / T for v in support]
                s_scaled = [s[v] / T for v in support]
            else:
                t_scaled, s_scaled = [x / T for x in t], [x / T for x in s]
            zt = math.log(sum(math.exp(x) for x in t_scaled))
            zs = math.log(sum(math.exp(x) for x in s_scaled))
            kl = 0.0
            for a, b in zip(t_scaled, s_scaled, strict=True):
                kl += math.exp(a - zt) * ((a - zt) - (b - zs))
            total += alpha * T * T * kl + (1 - alpha) * ce
            count += 1
    return total / count


def test_kd_loss_with_teacher_model_equals_naive_loop(tokenizer):
    student, teacher = make_model(tokenizer, 0), make_model(tokenizer, 1)
    examples = make_examples(5)
    reference = naive_loss(student, teacher, tokenizer, examples, alpha=0.3, T=2.0)
    # One optimizer step split into micro-batches: the loss must equal the unbatched loop.
    config = TrainConfig(
        objective="kd", signal="cot", kd_alpha=0.3, kd_temperature=2.0, batch_size=8, micro_batch_tokens=40
    )
    stats = HFStudent(student, tokenizer, config=config, teacher=teacher, quiet=True).fit(
        examples, 10_000, Ledger(None, 10_000)
    )
    assert stats.optimizer_steps == 1
    assert stats.mean_loss == pytest.approx(reference, rel=1e-5)


def test_kd_loss_with_recorded_topk_equals_naive_loop(tokenizer):
    student, teacher = make_model(tokenizer, 0), make_model(tokenizer, 1)
    examples = make_examples(4)
    records = []
    for ex in examples:  # the teacher's top-5 (+ the emitted token) per label position, as backends record them
        prompt = train.encode_prompt(tokenizer, ex.prompt)
        labels = train.encode_completion(tokenizer, ex.completion)
        with torch.no_grad():
            lp = torch.log_softmax(teacher(input_ids=torch.tensor([prompt + labels])).logits[0], -1)
        rows = lp[len(prompt) - 1 : len(prompt) + len(labels) - 1]
        records.append(
            [
                {**dict(zip(r.topk(5).indices.tolist(), r.topk(5).values.tolist(), strict=True)), t: r[t].item()}
                for r, t in zip(rows, labels, strict=True)
            ]
        )
    examples = [dataclasses.replace(ex, top_logprobs=rec) for ex, rec in zip(examples, records, strict=True)]
    reference = naive_loss(student, teacher, tokenizer, examples, alpha=0.6, T=1.5, topk_of=records)
    config = TrainConfig(objective="kd", signal="logit", kd_alpha=0.6, kd_temperature=1.5, batch_size=8)
    # No teacher model: the recorded top-k must be what is used.
    stats = HFStudent(student, tokenizer, config=config, quiet=True).fit(examples, 10_000, Ledger(None, 10_000))
    assert stats.mean_loss == pytest.approx(reference, rel=1e-5)


def test_kd_loss_is_zero_when_teacher_is_student(tokenizer):
    student = make_model(tokenizer, 0)
    config = TrainConfig(objective="kd", kd_alpha=1.0, kd_temperature=2.0)
    stats = HFStudent(student, tokenizer, config=config, teacher=copy.deepcopy(student), quiet=True).fit(
        make_examples(4), 10_000, Ledger(None, 10_000)
    )
    assert abs(stats.mean_loss) < 1e-6
    logits = torch.randn(6, 50)
    top = torch.log_softmax(logits, -1).topk(7)
    assert train.kl_topk(logits, top.indices, top.values, 1.7).abs().max() < 1e-5


def test_reverse_kl_is_the_students_expectation_and_trains_towards_the_teacher(tokenizer):
    s, t = torch.randn(5, 40), torch.randn(5, 40) * 3
    ps, pt = torch.softmax(s, -1), torch.softmax(t, -1)
    assert torch.allclose(train.kl_reverse(s, t, 1.0), (ps * (ps.log() - pt.log())).sum(-1), atol=1e-5)
    assert not torch.allclose(train.kl_reverse(s, t, 1.0), train.kl_full(s, t, 1.0), atol=1e-2)
    assert train.kl_reverse(s, s, 2.0).abs().max() < 1e-6
    # Its loss through fit: zero against itself, and positive against another model.
    student = make_model(tokenizer, 0)
    config = TrainConfig(signal="on_policy", objective="reverse_kl")
    same = HFStudent(student, tokenizer, config=config, teacher=copy.deepcopy(student), quiet=True)
    assert abs(same.fit(make_examples(4), 10_000, Ledger(None, 10_000)).mean_loss) < 1e-6
    other = HFStudent(make_model(tokenizer, 0), tokenizer, config=config, teacher=make_model(tokenizer, 1), quiet=True)
    assert other.fit(make_examples(4), 10_000, Ledger(None, 10_000)).mean_loss > 0.01


# -- what training changes ----------------------------------------------------------------
def test_training_changes_student_never_teacher(tokenizer):
    student, teacher = make_model(tokenizer, 0), make_model(tokenizer, 1)
    before_s, before_t = params(student), params(teacher)
    config = TrainConfig(objective="kd", signal="resp", batch_size=2, lr=1e-2, warmup_frac=0.0)
    stats = HFStudent(
        student, tokenizer, config=config, teacher=HFTeacher(teacher, tokenizer, name="t"), quiet=True
    ).fit(make_examples(6), 10_000, Ledger(None, 10_000))
    assert stats.optimizer_steps == 3
    assert not same(params(student), before_s)
    assert same(params(teacher), before_t)
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("unit", ["train", "gen+train"])
def test_spend_meets_quota_exactly_and_never_exceeds_budget(tokenizer, unit):
    config = TrainConfig(batch_size=2)
    examples = make_examples(8)
    probe = Ledger(None, 1, unit=unit)
    costs = [cost(tokenizer, ex, probe, config) for ex in examples]
    prompt3 = len(train.encode_prompt(tokenizer, examples[3].prompt))
    quotas = [
        sum(costs[:3]) + 2,  # cuts the 4th example's labels
        sum(costs[:5]) - 1,  # the 5th loses its last label token (EOS)
        1 if unit == "train" else 3,  # smallest trainable pieces: 1 label, or 2 prompt tokens + 1 label
    ]
    if unit == "gen+train":
        quotas.append(sum(costs[:3]) + prompt3 - 1)  # 4th keeps only the end of its prompt
    for quota in quotas:
        ledger = Ledger(None, 10_000, unit=unit)
        stats = HFStudent(make_model(tokenizer, 0), tokenizer, config=config, quiet=True).fit(
            examples, quota, ledger, round=2
        )
        assert ledger.spent_in_round(2) == quota == stats.billable_tokens
        assert sum(stats.spend_per_capability.values()) == quota
        assert all(e.phase == "train" and e.round == 2 for e in ledger.entries)
        assert sum(e.tokens for e in ledger.entries) == stats.trained_tokens
    # Quota above what is left of the budget: spends exactly the rest, never more.
    ledger = Ledger(None, sum(costs[:2]) + 3, unit=unit)
    HFStudent(make_model(tokenizer, 0), tokenizer, config=config, quiet=True).fit(examples, 10_000, ledger)
    assert ledger.remaining == 0
    # More quota than examples: spends what the examples hold.
    ledger = Ledger(None, 10_000, unit=unit)
    stats = HFStudent(make_model(tokenizer, 0), tokenizer, config=config, quiet=True).fit(examples, 10_000, ledger)
    assert stats.billable_tokens == sum(costs) and stats.examples == len(examples)


def test_same_seed_gives_identical_weights(tokenizer):
    config = TrainConfig(batch_size=3, lr=1e-2)
    runs = []
    for _ in range(2):
        student = HFStudent(make_model(tokenizer, 0), tokenizer, config=config, seed=5, quiet=True)
        student.fit(make_examples(7), 60, Ledger(None, 1000))
        runs.append(params(student.model))
    assert same(*runs)


def test_save_load_round_trips_and_resume_equals_uninterrupted(tokenizer, tmp_path):
    config = TrainConfig(batch_size=2, lr=1e-2, warmup_frac=0.1)
    data = [make_examples(6, seed=1), make_examples(6, seed=2)]
    a = HFStudent(make_model(tokenizer, 0), tokenizer, config=config, quiet=True)
    ledger_a = Ledger(tmp_path / "a.jsonl", 500)
    a.fit(data[0], 70, ledger_a, round=0)
    a.save(tmp_path / "ckpt")
    ledger_a.sync()
    (tmp_path / "b.jsonl").write_text((tmp_path / "a.jsonl").read_text())
    after_first = params(a.model)
    a.fit(data[1], 70, ledger_a, round=1)

    b = HFStudent(make_model(tokenizer, 9), tokenizer, config=config, quiet=True)
    b.load(tmp_path / "ckpt")
    assert same(params(b.model), after_first)
    ledger_b = Ledger(tmp_path / "b.jsonl", 500)  # resumed from the file, as a run resumes
    b.fit(data[1], 70, ledger_b, round=1)
    assert same(params(b.model), params(a.model))
    # Saving over an existing checkpoint replaces it.
    b.save(tmp_path / "ckpt")
    c = HFStudent(make_model(tokenizer, 3), tokenizer, config=config, quiet=True)
    c.load(tmp_path / "ckpt")
    assert same(params(c.model), params(a.model))


# -- generation and scoring -----------------------------------------------------------------
PROMPTS = ["the cat", "one two three four five six seven owl", "red", "big dog likes 4 plus 5 is"]


def test_left_padded_batch_generation_equals_unbatched(tokenizer):
    teacher = HFTeacher(make_model(tokenizer, 1), tokenizer, name="tiny", batch_size=4)
    sampling = {"max_new_tokens": 6, "top_logprobs": 3}
    batched = teacher.generate(PROMPTS, sampling)
    for prompt, gen in zip(PROMPTS, batched, strict=True):
        alone = teacher.generate([prompt], sampling)[0]
        assert (alone.text, alone.prompt_tokens, alone.completion_tokens) == (
            gen.text,
            gen.prompt_tokens,
            gen.completion_tokens,
        )
        for p, q in zip(alone.top_logprobs, gen.top_logprobs, strict=True):
            assert p.keys() == q.keys()
            assert all(abs(p[k] - q[k]) < 1e-4 for k in p)
        assert gen.prompt_tokens == len(tokenizer(prompt)["input_ids"])
    student = HFStudent(teacher.model, tokenizer, batch_size=4)
    assert student.generate(PROMPTS, 6) == [g.text for g in batched]


def test_sampled_generation_is_seeded_per_batch(tokenizer):
    teacher = HFTeacher(make_model(tokenizer, 1), tokenizer, name="tiny")
    sampling = {"max_new_tokens": 8, "temperature": 1.0, "seed": 3}
    state = torch.random.get_rng_state()
    first = teacher.generate(PROMPTS, sampling)
    assert torch.equal(state, torch.random.get_rng_state())
    assert [g.text for g in teacher.generate(PROMPTS, sampling)] == [g.text for g in first]


def test_teacher_topk_logprobs_are_probabilities(tokenizer):
    teacher = HFTeacher(make_model(tokenizer, 1), tokenizer, name="tiny")
    for gen in teacher.generate(PROMPTS, {"max_new_tokens": 5, "top_logprobs": 4}):
        assert len(gen.top_logprobs) == gen.completion_tokens == 5
        for position in gen.top_logprobs:
            assert len(position) == 4 and all(isinstance(k, int) for k in position)
            assert sum(math.exp(v) for v in position.values()) <= 1 + 1e-6


def test_completion_count_includes_eos_and_no_padding(tokenizer):
    model = make_model(tokenizer, 1)
    torch.nn.init.zeros_(model.lm_head.weight)  # all logits equal: greedy picks id 0, the EOS
    gens = HFTeacher(model, tokenizer, name="eos").generate(PROMPTS, {"max_new_tokens": 5})
    assert [(g.text, g.completion_tokens) for g in gens] == [("", 1)] * len(PROMPTS)


def test_score_is_mean_logprob_per_reference_token(tokenizer):
    student = HFStudent(make_model(tokenizer, 0), tokenizer, batch_size=3)
    refs = [" 4 #### 9", " blue", " the owl helps", " 1"]
    scores = student.score(PROMPTS, refs)
    prompt = train.encode_prompt(tokenizer, PROMPTS[2])
    ref = train.encode_completion(tokenizer, refs[2], eos=False)
    with torch.no_grad():
        lp = torch.log_softmax(student.model(input_ids=torch.tensor([prompt + ref])).logits[0], -1)
    manual = sum(lp[len(prompt) - 1 + j, t].item() for j, t in enumerate(ref)) / len(ref)
    assert scores[2] == pytest.approx(manual, abs=1e-5)
    assert student.score(PROMPTS[:1], refs[:1])[0] == pytest.approx(scores[0], abs=1e-5)


# -- small pure pieces ------------------------------------------------------------------------
def test_signal_selects_the_text():
    ex = make_examples(1)[0]
    assert train.select_text(ex, "cot", "####") == ex.completion
    assert train.select_text(ex, "resp", "####") == " #### " + ex.completion.rsplit("#### ", 1)[1]
    assert train.select_text(dataclasses.replace(ex, completion=" 7"), "resp", "####") == " 7"
    assert train.objective_weights(TrainConfig(signal="logit")) == (1.0, 1.0)
    assert train.objective_weights(TrainConfig(signal="resp")) == (0.0, 1.0)


def test_lr_schedule_follows_budget_spent():
    config = TrainConfig(lr=1.0, warmup_frac=0.1, min_lr_frac=0.1)
    assert train.lr_at(config, 0.05) == pytest.approx(0.5)
    assert train.lr_at(config, 0.1) == pytest.approx(1.0)
    assert train.lr_at(config, 1.0) == pytest.approx(0.1)
    assert train.lr_at(TrainConfig(lr=1.0, schedule="constant", warmup_frac=0.0), 0.7) == 1.0


def test_logit_kd_falls_back_to_teacher_model_where_records_do_not_align(tokenizer):
    teacher = HFTeacher(make_model(tokenizer, 1), tokenizer, name="tiny")
    examples = make_examples(3)
    # A random teacher emits broken byte sequences: its text re-tokenizes differently.
    gens = teacher.generate([ex.prompt for ex in examples], {"max_new_tokens": 6, "top_logprobs": 3})
    examples = [
        dataclasses.replace(ex, completion=g.text, top_logprobs=g.top_logprobs)
        for ex, g in zip(examples, gens, strict=True)
    ]
    config = TrainConfig(objective="kd", signal="logit")
    student = HFStudent(make_model(tokenizer, 0), tokenizer, config=config, teacher=teacher, quiet=True)
    with pytest.warns(UserWarning, match="teacher model's distribution"):
        student.fit(examples, 100, Ledger(None, 100))


def test_logit_kd_without_records_needs_the_teacher_model(tokenizer):
    config = TrainConfig(objective="kd", signal="logit")
    student = HFStudent(make_model(tokenizer, 0), tokenizer, config=config, quiet=True)
    with pytest.raises(ValueError, match="top_logprobs"):
        student.fit(make_examples(2), 100, Ledger(None, 100))
    # With its teacher, the student takes the teacher's distribution, silently.
    student = HFStudent(
        make_model(tokenizer, 0), tokenizer, config=config, teacher=make_model(tokenizer, 1), quiet=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert student.fit(make_examples(2), 100, Ledger(None, 100)).billable_tokens > 0
