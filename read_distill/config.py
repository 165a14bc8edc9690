"""The typed configuration tree.

Defaults live here, in typed fields with one-line descriptions. A YAML file only
overrides them (no includes, no interpolation), and dotted command-line overrides
(``budget.total_tokens=2e6``) override the file. Unknown keys and ill-typed values are
errors that name the key and the expected type. The resolved config is written to the
run directory, so a run can always be re-created from it.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator
from pydantic_core import PydanticCustomError

from read_distill.policies import POLICIES
from read_distill.types import CAPABILITIES


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the file, key and expected value."""


#: Seeds are 0..2**32-1: numpy refuses negative seeds, and torch seeds derived from a run's
#: seed (seed * 1_000_003 + round) must stay below 2**64.
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
#: A weight of an allocation or requirement (finite: the sections refuse NaN and inf).
Weight = Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RunConfig(_Section):
    name: str = Field("demo", description="Run name; the default run dir is runs/<name>-<time>.")
    seed: Seed = Field(0, description="Seed of every random choice in the run (0 .. 2**32-1).")
    rounds: int = Field(20, ge=1, description="Number of bandit rounds (decision steps).")
    dev_every: int = Field(5, ge=1, description="Evaluate dev utility every this many rounds (not after the last: the test evaluation follows).")
    report: bool | None = Field(
        None, description="Write report.html when the run ends; default yes for real-model worlds, no for sim runs."
    )
    report_to: tuple[Literal["tensorboard", "wandb"], ...] = Field(
        (), description="Trackers that mirror the per-round and per-step series (offline: files in the run dir); default none."
    )


class BudgetConfig(_Section):
    total_tokens: int = Field(2_000_000, ge=1, description="The budget B in billable tokens.")
    unit: Literal["train", "gen+train"] = Field(
        "train", description="What B counts: 'train' (paper) or 'gen+train' (reference code)."
    )

    @field_validator("total_tokens", mode="before")
    @classmethod
    def _float_to_int(cls, v: Any) -> Any:
        # `2e6` arrives as a float from YAML or the command line; accept it when integral.
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, str):
            try:
                f = float(v)
            except ValueError:
                return v
            return int(f) if f.is_integer() else v
        return v


class RewardConfig(_Section):
    beta: float = Field(0.5, ge=0, description="Weight of the spillover penalty.")
    lambda_per_token: float = Field(1e-5, ge=0, description="Cost penalty per billable token.")
    top_k: int = Field(3, ge=1, description="Essential capabilities: the top-k of the requirement.")


#: A probe score, 0–100.
Score = Annotated[float, Field(ge=0, le=100)]


class FloorsConfig(_Section):
    scores: dict[str, Score] = Field(
        default_factory=dict,
        description="capability -> the probe score it must keep (0-100); merged over the task card's floors.",
    )
    drop: float | None = Field(
        None,
        ge=0,
        description="Each essential capability (top-k of r) may fall at most this many points below its initial score; "
        "none: only the listed floors.",
    )
    penalty: float = Field(100.0, ge=0, description="Subtracted from the reward the policy is told for a rolled-back round.")


class PolicyConfig(_Section):
    name: str = Field("read", description=f"Policy: one of {', '.join(POLICIES)}.")
    kappa: float = Field(1.0, ge=0, description="UCB exploration weight (read).")
    kappa_decay: float = Field(0.7, gt=0, le=1, description="Factor on kappa when dev utility stalls.")
    warmup_rounds: int = Field(
        2, ge=0, description="read without pilots: burn-in rounds that play r and whose score changes the model does not learn from."
    )
    ensemble_size: int = Field(5, ge=1, description="J, number of MLPs in the reward-model ensemble.")
    hidden: int = Field(64, ge=1, description="Hidden width of each reward-model MLP.")
    top_k: int = Field(3, ge=1, description="Sparse actions use the top-k capabilities of r.")
    beta: float = Field(
        0.5, ge=0, description="read: weight of the spillover term in the reward its model scores candidates by (0: no interaction awareness)."
    )
    grid: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = Field(
        (0.25, 0.5, 0.75), description="Pair weights of sparse actions, each in (0, 1)."
    )
    max_actions: int = Field(50, ge=1, description="Cap on the candidate action set.")
    min_share_frac: float = Field(
        0.25, ge=0, le=1, description="read: every candidate gives each needed capability at least this fraction of its share in r (0 = any allocation)."
    )
    profiling_tokens: int = Field(0, ge=0, description="Overhead budget for pilot runs (grid, read pre-training).")
    pilot_rounds: int = Field(2, ge=1, description="Rounds in each pilot run.")
    capability: str | None = Field(None, description="one_hot: the capability; default the top of r.")
    weights: dict[str, Weight] | None = Field(None, description="fixed: the allocation, capability -> weight.")
    schedule: list[dict[str, Weight]] | None = Field(None, description="schedule: one allocation per round.")
    exp3_gamma: float = Field(0.3, gt=0, le=1, description="exp3: initial exploration rate (decays).")

    @field_validator("grid")
    @classmethod
    def _some_grid(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        # An after-validator, so an empty grid gets this message and a bad entry only its own.
        if not v:
            raise PydanticCustomError("empty_grid", "expected at least one pair weight in (0, 1)")
        return v

    @field_validator("name")
    @classmethod
    def _known_policy(cls, v: str) -> str:
        # Checked with the config so that a typo fails before a world or model is loaded.
        if v not in POLICIES:
            raise PydanticCustomError("unknown_policy", "unknown policy; expected one of {names}", {"names": ", ".join(POLICIES)})
        return v


class GenerationConfig(_Section):
    batch_size: int = Field(32, ge=1, description="Prompts per generation batch: the teacher's, and the student's probes and evaluation.")
    max_new_tokens: dict[str, Annotated[int, Field(ge=1)]] = Field(
        {}, description="Per-capability max_new_tokens overrides; unlisted ones use the world's limits."
    )
    temperature: float = Field(0.0, ge=0, description="Teacher sampling temperature (0 = greedy).")
    top_logprobs: int = Field(0, ge=0, description="Top-k log-probs per generated token to keep (KD).")
    template_window: int = Field(128, ge=1, description="Sliding window of draws for the template share cap.")
    template_cap_frac: float = Field(0.25, gt=0, le=1, description="Max share of one template in the window.")


class LoraConfig(_Section):
    r: int = Field(8, ge=1, description="Rank of each adapter.")
    alpha: float = Field(16.0, gt=0, description="Adapter scale numerator: updates are multiplied by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on each adapter's input.")
    target_modules: Literal["all-linear"] | tuple[str, ...] = Field(
        "all-linear", min_length=1, description="Module names to adapt (e.g. [q_proj, v_proj]), or all-linear (every linear layer but the output head)."
    )


class TrainConfig(_Section):
    replay_frac: float = Field(
        0.0, ge=0, lt=1, description="Share of each round's quota trained on the world's general replay mixture (same for every policy)."
    )
    signal: Literal["resp", "cot", "logit", "on_policy"] = Field(
        "cot",
        description="Text trained on: resp (teacher's answer only), cot (teacher's rationale + answer), logit (teacher's "
        "token distributions), on_policy (the student's own samples at T = 1, scored by the teacher).",
    )
    objective: Literal["sft", "kd", "reverse_kl"] = Field(
        "sft",
        description="sft: cross-entropy on the text; kd: alpha*KL(teacher || student) + (1-alpha)*CE; reverse_kl: "
        "KL(student || teacher) on every token (with on_policy: on-policy distillation).",
    )
    kd_alpha: float = Field(0.5, ge=0, le=1, description="kd: weight of KL(teacher || student) against the hard-token CE.")
    kd_temperature: float = Field(1.0, gt=0, description="kd: softmax temperature of both distributions (KL scaled by T^2).")
    answer_marker: str = Field("####", description="resp: the response starts at the last occurrence of this marker.")
    lr: float = Field(3e-4, gt=0, description="Peak AdamW learning rate.")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="LR after warmup, as a function of the budget spent.")
    warmup_frac: float = Field(0.02, ge=0, lt=1, description="Linear LR warmup over this fraction of the budget B.")
    min_lr_frac: float = Field(0.1, ge=0, le=1, description="cosine: final LR as a fraction of the peak.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay.")
    adam_beta2: float = Field(0.999, gt=0, lt=1, description="AdamW second-moment decay (0.98 steadies small models at high LR).")
    batch_size: int = Field(16, ge=1, description="Examples per optimizer step.")
    micro_batch_tokens: int = Field(8192, ge=1, description="Max padded tokens per forward pass (gradient accumulation above).")
    max_seq_tokens: int = Field(2048, ge=2, description="Longest training sequence; longer prompts lose their start.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto", description="accelerate mixed precision; auto = bf16 on GPUs that support it, else fp32."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    lora: LoraConfig | None = Field(
        None, description="Train LoRA adapters (peft) instead of every weight; the run's checkpoint then holds the adapters only."
    )


class ProbeSuite(_Section):
    path: str = Field(description="JSONL rows (prompt, answer, grader), e.g. from `read-distill bench export`.")
    size: int | None = Field(None, ge=1, description="A subset of this many rows (drawn with `seed`); default all.")
    seed: Seed = Field(0, description="Seed of the subset.")


class ProbeConfig(_Section):
    items_per_capability: int = Field(32, ge=1, description="Held-out probe items per capability.")
    seed: Seed = Field(0, description="Seed of the probe suite (fixed across runs so profiles compare).")
    stop_width: float = Field(
        100.0,
        ge=0,
        description="A probe after a round scores a third of a capability's items at a time and stops once its 95 % "
        "interval is at most this many points wide: 100 (an interval's largest width), the first third only; 0, every "
        "item, always. The initial and final measurements always score every item.",
    )
    others_every: int = Field(
        0,
        ge=0,
        description="Capabilities the reward does not read (r_c = 0) are probed every this many rounds (1: every round, "
        "the paper's probe refresh); 0: only in the measurements before the first and after the last round. Those it "
        "reads are probed after every round.",
    )
    suites: dict[str, ProbeSuite] = Field(
        default_factory=dict,
        description="world.kind hf: capability -> benchmark rows probing it instead of its template items "
        "(held out from training prompts by hash, like every probe).",
    )


class TeacherSpec(_Section):
    """One teacher: a local model loaded in the run's process, or a server over HTTP."""

    path: str | None = Field(None, description="A local model directory (or a hub id where the hub is reachable), loaded once.")
    engine: Literal["hf", "vllm"] = Field("hf", description="path: load with transformers (hf) or vLLM's offline engine (vllm; the vllm extra, a CUDA GPU).")
    tensor_parallel_size: int = Field(1, ge=1, description="engine vllm: GPUs the teacher is split over.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="engine vllm: share of each GPU's memory vLLM may take.")
    url: str | None = Field(None, description="Base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1).")
    model: str | None = Field(None, description="url: the model name the server serves (vLLM: the path given to `vllm serve`).")
    api: Literal["completions", "chat"] = Field(
        "completions", description="url: the completions endpoint (prompt as given) or chat completions (prompt as one user message)."
    )
    api_key_env: str | None = Field(None, description="url: environment variable holding the API key (read at run time, never written).")
    concurrency: int = Field(16, ge=1, description="url: requests in flight at once.")
    timeout: float = Field(600.0, gt=0, description="url: seconds before a request is abandoned (and retried).")
    max_retries: int = Field(5, ge=0, description="url: retries of a request after a timeout, 429 or 5xx, with exponential backoff.")

    @property
    def served(self) -> bool:
        """Whether the teacher gives only what a server returns (text, recorded top-k), not
        its full distribution in this process: a URL, or vLLM's engine."""
        return self.url is not None or self.engine == "vllm"


class WorldConfig(_Section):
    kind: Literal["sim", "micro", "hf"] = Field("micro", description="Which world: simulated, embedded micro-world, or HF models.")
    sim_environment: str = Field("paper_20m", description="sim: name of a built-in environment.")
    micro_size: Literal["default", "tiny"] = Field("default", description="micro: which embedded world build.")
    micro_dir: str | None = Field(None, description="micro: directory of a built world (default: the shipped one).")
    teacher: str | None = Field(None, description="hf: teacher model, a local directory (or a hub id where the hub is reachable).")
    student: str | None = Field(None, description="hf: initial student S0, a local directory (or a hub id).")
    template_dir: str | None = Field(None, description="hf: directory of template pools (*.jsonl); default the shipped pools.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="hf: model dtype; auto = bf16 inference on capable GPUs, else fp32.")
    device: str = Field("auto", description="hf: torch device of both models; auto = the first GPU, else the CPU.")
    chat_template: bool = Field(True, description="Put prompts through the tokenizer's chat template (teacher and student alike) where the tokenizer has one; false: raw text.")
    probe_scoring: Literal["graded", "teacher_logprob"] = Field(
        "graded", description="hf: probe with gradable templates, or score every template by log-prob of the teacher's answer."
    )
    teacher_url: str | None = Field(
        None, description="micro/hf: base URL of an OpenAI-compatible server of the teacher (e.g. http://127.0.0.1:8000/v1); given, the teacher is called over HTTP instead of loaded."
    )
    teacher_model: str | None = Field(None, description="teacher_url: the model name the server serves (vLLM: the path given to `vllm serve`).")
    teacher_api: Literal["completions", "chat"] = Field(
        "completions", description="teacher_url: the completions endpoint (prompt as given) or chat completions (prompt as one user message)."
    )
    teacher_api_key_env: str | None = Field(
        None, description="teacher_url: environment variable holding the API key (read at run time, never written); none for local servers."
    )
    teacher_concurrency: int = Field(16, ge=1, description="teacher_url: requests in flight at once.")
    teacher_timeout: float = Field(600.0, gt=0, description="teacher_url: seconds before a request is abandoned (and retried).")
    teacher_max_retries: int = Field(5, ge=0, description="teacher_url: retries of a request after a timeout, 429 or 5xx, with exponential backoff.")
    teachers: dict[str, TeacherSpec] = Field(
        default_factory=dict,
        description="Teachers by capability: `default` (instead of the teacher* fields above) and any capability whose "
        "prompts another teacher answers, each a local model (path) or a server (url + model).",
    )

    def teacher_specs(self) -> dict[str, TeacherSpec]:
        """The run's teachers: ``default`` first (``teachers.default``, else the ``teacher*``
        fields; neither path nor url for the micro-world's own teacher), then each
        capability's override."""
        default = self.teachers.get("default") or TeacherSpec(
            path=self.teacher, url=self.teacher_url, model=self.teacher_model, api=self.teacher_api,
            api_key_env=self.teacher_api_key_env, concurrency=self.teacher_concurrency, timeout=self.teacher_timeout,
            max_retries=self.teacher_max_retries,
        )
        return {"default": default, **{k: v for k, v in self.teachers.items() if k != "default"}}

    def teacher_field(self, key: str, name: str) -> str:
        """The config field that set ``name`` of teacher ``key``, for error messages."""
        if key in self.teachers:
            return f"world.teachers.{key}.{name}"
        return "world.teacher" if name == "path" else f"world.teacher_{name}"


class TaskConfig(_Section):
    card: str = Field("tool_math", description="Task card: a built-in name or a path to a YAML card.")
    requirement: dict[str, float] | None = Field(
        None,
        description="Requirement over the card's: capability -> weight, `uniform`, or the learned g_φ of the card's text "
        "(`auto`, or `{learned: MODEL_DIR}`).",
    )

    @field_validator("requirement", mode="wrap")
    @classmethod
    def _uniform(cls, v: Any, handler: Any) -> Any:
        # `uniform` (every capability alike: the ablation without identification), `auto`
        # and `{learned: MODEL_DIR}` pass as they are; a mapping of weights is validated as
        # the field's type says.
        from read_distill.tasks import learned_form

        learned = learned_form(v, extra=("uniform",))
        return learned if learned is not None else handler(v)

    @field_serializer("requirement")
    def _requirement_as_given(self, v: Any) -> Any:
        return v


class GraderConfig(_Section):
    sandbox_fallback: bool = Field(
        False,
        description="Where model-written code cannot be isolated (namespaces need root and Linux >= 5.12), run it anyway "
        "with process limits only: it can then reach the network, see other processes and write wherever its user may. "
        "Default: do not run it; it is graded as a failure and a warning says why.",
    )


class Config(_Section):
    capabilities: tuple[str, ...] = Field(CAPABILITIES, description="The capabilities, in order.")
    run: RunConfig = RunConfig()
    budget: BudgetConfig = BudgetConfig()
    reward: RewardConfig = RewardConfig()
    floors: FloorsConfig = FloorsConfig()
    policy: PolicyConfig = PolicyConfig()
    generation: GenerationConfig = GenerationConfig()
    train: TrainConfig = TrainConfig()
    probe: ProbeConfig = ProbeConfig()
    world: WorldConfig = WorldConfig()
    task: TaskConfig = TaskConfig()
    grader: GraderConfig = GraderConfig()


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the
    last one silently, so a repeated key would quietly drop a setting)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        # Unhashable keys are left to construct_mapping, which reports them.
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        if isinstance(key, Hashable):
            seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: where, then what (PyYAML's own text spans several lines)."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def parse_yaml(text: str, source: str) -> Any:
    """``text`` parsed as YAML (safe types only, no repeated keys); errors name ``source``."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: plain data only
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(e)}") from None


def read_input(path: Path | str, what: str) -> str:
    """The text of the input file ``path`` (a ``what``: config file, task card, ...).

    A missing, unreadable or non-UTF-8 file is a ConfigError naming the file (and, for bad
    bytes, the line), never a traceback.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x}); expected a UTF-8 text file") from None


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {p!r} is not a section")
        node = child
    node[parts[-1]] = value


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_errors(errors: list[dict[str, Any]], source: str) -> str:
    """Pydantic's errors as one line: each key with what it expected and what it got."""
    parts = []
    for e in errors:
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key {key!r}")
        else:
            parts.append(f"{key}: {e['msg']} (got {_short(e.get('input'))})")
    return f"{source}: " + "; ".join(parts)


def _apply_overrides(tree: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> None:
    """Set each ``key=value`` (value parsed as YAML) in ``tree``; a key given twice is an error."""
    given: set[str] = set()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = (part.strip() for part in item.split("=", 1))
        if key in given:
            raise ConfigError(f"override {item!r}: {key} is given twice; expected each key once")
        given.add(key)
        _set_dotted(tree, key, parse_yaml(raw, f"override {item!r}"))


def _check_names(config: Config, source: str) -> None:
    """What one field says about another: capability names, allocations that can be
    normalised, a schedule that covers every round."""
    caps = list(config.capabilities)
    if len(set(caps)) != len(caps) or not caps:
        raise ConfigError(f"{source}: capabilities: expected distinct names, got {caps}")
    policy = config.policy
    allocations = {"policy.weights": policy.weights} if policy.weights is not None else {}
    allocations.update({f"policy.schedule.{t}": w for t, w in enumerate(policy.schedule or [])})
    named = {**allocations, "generation.max_new_tokens": config.generation.max_new_tokens, "probe.suites": config.probe.suites}
    for field, weights in named.items():
        unknown = sorted(set(weights) - set(caps))
        if unknown:
            raise ConfigError(f"{source}: {field}: unknown capabilities {unknown}; expected some of {caps}")
    for field, weights in allocations.items():
        if sum(weights.values()) <= 0:
            raise ConfigError(f"{source}: {field}: expected capability -> weight with some positive weight, got {weights}")
    if policy.capability is not None and policy.capability not in caps:
        raise ConfigError(f"{source}: policy.capability: unknown capability {policy.capability!r}; expected one of {caps}")
    train = config.train
    if train.signal == "on_policy" and train.objective == "sft":
        raise ConfigError(
            f"{source}: train.objective: sft with train.signal=on_policy would fit the student to its own samples; "
            "expected kd or reverse_kl (the teacher scores the student's tokens)"
        )
    if train.signal == "on_policy" and config.world.kind == "sim":
        raise ConfigError(f"{source}: train.signal: on_policy needs a student that samples; expected world.kind micro or hf")
    if policy.name == "fixed" and not policy.weights:
        raise ConfigError(f"{source}: policy.weights: required by policy fixed; expected capability -> weight")
    if policy.name == "schedule" and len(policy.schedule or []) < config.run.rounds:
        raise ConfigError(
            f"{source}: policy.schedule: {len(policy.schedule or [])} allocations for {config.run.rounds} rounds; "
            "expected one allocation (capability -> weight) per round"
        )


def _check_teachers(config: Config, source: str) -> None:
    """The teachers' settings: capability names, one default, an http(s) URL with a model
    name for each served teacher, and an objective that needs only what every teacher
    gives (a server or vLLM: text and recorded top-k; several teachers: no one full
    distribution for the student's KD)."""
    from urllib.parse import urlsplit

    wc, tc = config.world, config.train
    unknown = sorted(set(wc.teachers) - {"default", *config.capabilities})
    if unknown:
        raise ConfigError(f"{source}: world.teachers: unknown capabilities {unknown}; expected default or some of {list(config.capabilities)}")
    if "default" in wc.teachers and (wc.teacher or wc.teacher_url):
        raise ConfigError(f"{source}: world.teachers.default: the default teacher is also given by world.teacher/world.teacher_url; give it once")
    specs = wc.teacher_specs()
    if len(specs) > 1 and wc.kind == "sim":
        raise ConfigError(f"{source}: world.teachers: world.kind=sim has no teacher models; use world.kind=micro or hf")
    for key, spec in specs.items():
        field = lambda name, key=key: wc.teacher_field(key, name)  # noqa: E731
        if spec.url is None:
            if spec.model is not None:
                raise ConfigError(f"{source}: {field('model')}: only used with {field('url')}; give the server's base URL too")
            if spec.path is None and key != "default":
                raise ConfigError(f"{source}: world.teachers.{key}: expected a local model (path) or a server (url and model)")
            if spec.engine == "vllm" and spec.path is None:
                raise ConfigError(f"{source}: {field('engine')}: vllm loads a local model; give {field('path')}")
            continue
        if spec.path is not None:
            raise ConfigError(f"{source}: {field('url')}: a teacher is a local model (path) or a server (url), not both")
        if spec.engine != "hf":
            raise ConfigError(f"{source}: {field('engine')}: {spec.engine} loads a local model; a served teacher (url) has no engine here")
        url = urlsplit(spec.url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(f"{source}: {field('url')}: expected an http(s) base URL such as http://127.0.0.1:8000/v1, got {spec.url!r}")
        if not spec.model:
            raise ConfigError(f"{source}: {field('model')}: required with {field('url')}; give the model name the server serves")
        if wc.kind == "sim":
            raise ConfigError(f"{source}: {field('url')}: world.kind=sim has no teacher model; use world.kind=micro or hf")
    served = [k for k, spec in specs.items() if spec.served]
    # The student's KD loss reads one in-process teacher's full distribution.
    why = (f"a served or vLLM teacher ({wc.teacher_field(served[0], 'url' if specs[served[0]].url else 'engine')}) does not give it"
           if served else "several teachers (world.teachers) give no one distribution" if len(specs) > 1 else None)
    if why and tc.objective == "reverse_kl":
        raise ConfigError(
            f"{source}: train.objective=reverse_kl needs the teacher's full distribution at every student token, and {why}; "
            "use one in-process teacher (world.teacher) or train.signal=logit"
        )
    if why and tc.objective == "kd" and tc.signal != "logit":
        raise ConfigError(
            f"{source}: train.signal={tc.signal} with train.objective=kd needs the teacher's full distribution, and {why}; "
            "use train.signal=logit with generation.top_logprobs > 0"
        )
    if why and tc.signal == "logit" and config.generation.top_logprobs == 0:
        raise ConfigError(f"{source}: generation.top_logprobs: train.signal=logit with {'a served or vLLM teacher' if served else 'several teachers'} needs the recorded top-k; expected > 0 (vLLM allows up to --max-logprobs, default 20)")


def load_config(path: Path | str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML file at ``path``, then ``key=value`` overrides."""
    tree: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        loaded = parse_yaml(read_input(path, "config file"), source)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        tree = loaded or {}
    return _validated(tree, overrides, source)


def with_overrides(config: Config, overrides: list[str] | tuple[str, ...], source: str) -> Config:
    """``config`` with ``key=value`` overrides applied, checked as ``load_config`` checks."""
    return _validated(config.model_dump(mode="json"), overrides, source)


def _validated(tree: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str) -> Config:
    _apply_overrides(tree, overrides)
    if overrides:
        source += " + overrides " + " ".join(repr(o) for o in overrides)
    try:
        config = Config.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(describe_errors(e.errors(), source)) from None
    _check_names(config, source)
    _check_teachers(config, source)
    return config


def dump_config(config: Config) -> str:
    """The resolved config as YAML (every field, defaults included)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
