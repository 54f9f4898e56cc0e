"""One small spec per paper table: which runs fill which rows, which columns, which rows are compared.

The runs come from `sa2c.config.experiment_runs`, so a table asks for exactly the runs the workflow trains. A spec
is plain data; `tables.py` fills it with numbers and renders it through the table's Jinja2 template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sa2c import config as grid
from sa2c.errors import UserError

ENCODER_LABELS = {"gru": "GRU", "caser": "Caser", "nextitnet": "NItNet", "sasrec": "SASRec"}
METHOD_LABELS = {"ce": "", "sqn": "SQN", "snqn": "SNQN", "sac": "SAC", "sa2c": "SA2C", "dqn": "DQN"}
ROLE_LABELS = {"rc15": "RC15", "retailrocket": "RetailRocket"}
EVENT_LABELS = {"purchase": "Purchase", "click": "Click"}
# The paper writes NG for NDCG; off_ndcg is the off-policy corrected NDCG of Table 5.
METRIC_LABELS = {"hr": "HR", "ndcg": "NG", "off_ndcg": "off-NG"}

TOPK_METRICS = ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20")
TOP10_METRICS = ("hr@10", "ndcg@10", "off_ndcg@10")

# Marks in the .tex for a significant improvement (paired t-test) over a compared row.
MARK_REFERENCE = "dagger"  # over the table's reference row (the base encoder in Tables 2-3)
MARK_PAIR = "ddagger"  # SA2C over SAC and SNQN over SQN (Tables 2-3)

PUBLISHED = Path(__file__).with_name("published.yaml")


@dataclass(frozen=True)
class Column:
    event: str
    metric: str

    @property
    def label(self) -> str:
        name, _, k = self.metric.partition("@")
        return f"{METRIC_LABELS.get(name, name)}@{k}"


@dataclass(frozen=True)
class Comparison:
    ref: str  # key of the compared row, in the same group
    mark: str | None  # LaTeX symbol name for a significant improvement, or None (the CSV only)


@dataclass
class Row:
    key: str  # unique within its group; the method variant where that is unique
    label: str  # plain text (CSV)
    label_tex: str  # LaTeX
    dataset: str
    encoder: str
    method: str  # method variant
    head: str
    comparisons: list[Comparison] = field(default_factory=list)


@dataclass
class Group:
    label: str
    label_tex: str | None  # a header row above the group's rows, or None (the rows' labels say it all)
    rows: list[Row]


@dataclass(frozen=True)
class DatasetInfo:
    role: str  # rc15 | retailrocket
    name: str  # the configured dataset playing that role
    synthetic: bool

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


@dataclass
class TableSpec:
    name: str
    groups: list[Group]
    columns: list[Column]
    datasets: list[DatasetInfo]
    split: str = "test"


def tex_escape(text: object) -> str:
    """Escape LaTeX's special characters in plain text (dataset and method names come from the user's config)."""
    out = []
    for ch in str(text):
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "~":
            out.append(r"\textasciitilde{}")
        elif ch == "^":
            out.append(r"\textasciicircum{}")
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        else:
            out.append(ch)
    return "".join(out)


def dataset_info(config: dict, role: str) -> DatasetInfo:
    roles = grid.dataset_roles(config)
    if role not in roles:
        raise UserError(f"config key paper_datasets has no {role!r} entry; name the dataset that plays {ROLE_LABELS.get(role, role)}")
    name = roles[role]
    spec = config["datasets"].get(name)
    if spec is None:
        raise UserError(f"config key paper_datasets.{role}={name!r} is not under `datasets`")
    return DatasetInfo(role, name, bool(spec.get("synthetic")))


def _variant_method(variants: dict, variant: str) -> str:
    if variant not in variants:
        raise UserError(f"method variant {variant!r} is not configured (config key `methods`)")
    return variants[variant].get("method", "ce")


def encoder_label(encoder: str) -> str:
    return ENCODER_LABELS.get(encoder, encoder)


def method_row_label(variants: dict, encoder: str, variant: str) -> str:
    """'GRU' for the base model, 'GRU-SA2C' for a method; variants not named after their method keep their name."""
    method = _variant_method(variants, variant)
    enc = encoder_label(encoder)
    standard = variant == method or (method == "ce" and variant == "base")
    core = enc if method == "ce" else f"{enc}-{METHOD_LABELS[method]}"
    return core if standard else f"{core} ({variant})"


def _resolved(config: dict, dataset: str, encoder: str, variant: str) -> grid.TrainConfig:
    """The TrainConfig a run of this variant uses (every layer of the config applied)."""
    try:
        return grid.resolve_train_config(config, dataset, encoder, variant, int(config["seeds"][0]))
    except (KeyError, ValueError) as err:
        raise UserError(f"config: cannot resolve method variant {variant!r} on dataset {dataset!r}: {err}") from None


def _find(rows: list[Row], variants: dict, method: str) -> list[Row]:
    return [r for r in rows if _variant_method(variants, r.method) == method]


def _method_rows(variants: dict, dataset: str, encoder: str, methods: list[str], head: str) -> list[Row]:
    rows = []
    for variant in dict.fromkeys(methods):
        label = method_row_label(variants, encoder, variant)
        rows.append(Row(variant, label, tex_escape(label), dataset, encoder, variant, head))
    return rows


def _topk_columns(metrics=TOPK_METRICS) -> list[Column]:
    return [Column(event, metric) for event in ("purchase", "click") for metric in metrics]


def main_table_spec(config: dict, name: str) -> TableSpec:
    """Tables 2 (RC15) and 3 (RetailRocket): every encoder x main method, supervised head."""
    role = {"table2": "rc15", "table3": "retailrocket"}[name]
    info = dataset_info(config, role)
    variants = grid.method_variants(config)
    groups_runs: dict[str, list[str]] = {}
    for dataset, encoder, method in grid.experiment_runs(config)[name]:
        groups_runs.setdefault(encoder, []).append(method)
    groups = []
    for encoder, methods in groups_runs.items():
        rows = _method_rows(variants, info.name, encoder, methods, "supervised")
        bases = _find(rows, variants, "ce")
        for row in rows:
            method = _variant_method(variants, row.method)
            if bases and method != "ce":
                row.comparisons.append(Comparison(bases[0].key, MARK_REFERENCE))
            # The paper's two claims: SA2C beats SAC, SNQN beats SQN.
            partner = {"sa2c": "sac", "snqn": "sqn"}.get(method)
            refs = _find(rows, variants, partner) if partner else []
            if refs:
                row.comparisons.append(Comparison(refs[0].key, MARK_PAIR))
        groups.append(Group(encoder_label(encoder), None, rows))
    return TableSpec(name, groups, _topk_columns(), [info])


def _role_group(info: DatasetInfo) -> tuple[str, str]:
    suffix = ", synthetic" if info.synthetic else ""
    label = f"{info.role_label} role: {info.name}{suffix}"
    return label, tex_escape(label)


def qhead_table_spec(config: dict) -> TableSpec:
    """Table 4: recommendations from the Q head, DQN vs SNQN vs SA2C (GRU), both datasets."""
    variants = grid.method_variants(config)
    q = config["experiments"]["qhead"]
    infos, groups = [], []
    for role in ("rc15", "retailrocket"):
        info = dataset_info(config, role)
        rows = _method_rows(variants, info.name, q["encoder"], q["methods"], "q")
        dqn = _find(rows, variants, "dqn")
        snqn = _find(rows, variants, "snqn")
        for row in rows:
            method = _variant_method(variants, row.method)
            if dqn and method != "dqn":
                row.comparisons.append(Comparison(dqn[0].key, MARK_REFERENCE))
            if snqn and method == "sa2c":  # the paper: no significant difference on the Q head
                row.comparisons.append(Comparison(snqn[0].key, None))
        infos.append(info)
        groups.append(Group(*_role_group(info), rows))
    return TableSpec("table4", groups, _topk_columns(), infos)


def offpolicy_table_spec(config: dict) -> TableSpec:
    """Table 5: SA2C without vs with off-policy correction (GRU), top-10 incl. off-policy NDCG, both datasets."""
    variants = grid.method_variants(config)
    off = config["experiments"]["offpolicy"]
    infos, groups = [], []
    for role in ("rc15", "retailrocket"):
        info = dataset_info(config, role)
        rows = []
        smooths = {}
        for variant in dict.fromkeys(off["methods"]):
            smooths[variant] = smooth = _resolved(config, info.name, off["encoder"], variant).smooth
            core = f"{encoder_label(off['encoder'])}-{METHOD_LABELS[_variant_method(variants, variant)]}"
            label = f"{core} w/o correction" if smooth == 0 else f"{core} w/ correction (smooth {smooth:g})"
            rows.append(Row(variant, label, tex_escape(label), info.name, off["encoder"], variant, "supervised"))
        if len({r.label for r in rows}) < len(rows):  # same method and smooth: the variant names tell them apart
            for r in rows:
                r.label = f"{r.label} ({r.method})"
                r.label_tex = tex_escape(r.label)
        without = [r for r in rows if smooths[r.method] == 0]
        for row in rows:
            if without and row is not without[0]:
                row.comparisons.append(Comparison(without[0].key, MARK_REFERENCE))
        infos.append(info)
        groups.append(Group(*_role_group(info), rows))
    return TableSpec("table5", groups, _topk_columns(TOP10_METRICS), infos)


def negative_reward_table_spec(config: dict) -> TableSpec:
    """Table 6: one row per negative reward r_negative (GRU, RC15 role)."""
    nr = config["experiments"]["negative_reward"]
    info = dataset_info(config, "rc15")
    rows = []
    for value in dict.fromkeys(float(v) for v in nr["values"]):
        variant = grid.negative_reward_variant(config, value)
        rows.append(
            Row(f"rneg{value:g}", f"r_neg={value:g}", f"$r_{{\\mathrm{{neg}}}} = {value:g}$", info.name, nr["encoder"], variant, "supervised")
        )
    # The reference is the method's own setting (the paper's r_negative = 0), when it is among the values.
    default = [r for r in rows if r.method == nr["method"]]
    for row in rows:
        if default and row is not default[0]:
            row.comparisons.append(Comparison(default[0].key, MARK_REFERENCE))
    return TableSpec("table6", [Group(info.name, None, rows)], _topk_columns(), [info])


def table_spec(config: dict, name: str) -> TableSpec:
    if name in ("table2", "table3"):
        return main_table_spec(config, name)
    if name == "table4":
        return qhead_table_spec(config)
    if name == "table5":
        return offpolicy_table_spec(config)
    if name == "table6":
        return negative_reward_table_spec(config)
    raise UserError(f"no table spec named {name!r}; known: table1..table6, paper_vs_run")


def load_published() -> dict:
    with open(PUBLISHED) as fh:
        return yaml.safe_load(fh)
