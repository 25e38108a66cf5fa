"""Bad input never breaks capplan: property-based tests (hypothesis) of the instance boundary.

Every generated input starts from a small valid instance and is mutated at
random key paths (wrong types, negative, huge and non-finite numbers, missing
and unknown keys, empty sections, unknown references, years outside the horizon
or not years at all, reversed or enormous horizons), or is written to a real
file and mutated as text and bytes (truncation, non-UTF-8 bytes, YAML tags,
anchors and aliases).  The property: ``load_instance`` either returns an
:class:`Instance` - which then solves to a :class:`Plan` with some
:class:`SolveStatus` - or raises :class:`InstanceError` whose every problem has
a message and a path that is "" (the file as a whole) or a key path starting at
a top-level section.  Anything else (another exception, a hang, a memory
blow-up) fails.

The examples are derandomized so that CI runs the same ~2,100 cases every time.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from conftest import tiny
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import Instance, InstanceError, load_instance, solve
from optimizer.instance import (
    MAX_CHIPS,
    MAX_FILE_BYTES,
    MAX_HORIZON_YEARS,
    MAX_REGIONS,
    MAX_YAML_NODES,
    YEAR_RANGE,
)
from optimizer.instance.generate import generate_instance
from optimizer.plan import Plan
from optimizer.solver import SolveStatus

ROOT = Path(__file__).resolve().parent.parent

# The top-level sections of spec section 1: every key path starts with one of them.
SECTIONS = {"name", "description", "horizon", "discount_rate", "budget", "power", "objective",
            "training", "regions", "chips", "serving",
            "uncertainty"}  # spec v2 section 4

FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])

LOAD_SECONDS = 5.0  # loading a small (mutated) instance takes milliseconds; more is a hang


# ------------------------------------------------------------------ valid starting points


def rich() -> dict:
    """Two regions with serving, installed chips and every series form; still tiny to solve."""
    return {
        "name": "rich",
        "description": "fuzz base",
        "horizon": {"start": 2026, "end": 2028},
        "discount_rate": 0.05,
        "budget": {"total_usd": 5e4, "annual_max_usd": {2026: 2e4, 2028: 3e4}},
        "power": {"ceiling_mw": 40},
        "objective": {"kind": "max_training", "unmet_penalty": 2, "cost_weight": 0.01},
        "training": {"min_pflops": {"start": 1, "growth": 0.1}, "frontier_cluster_pflops": 0},
        "regions": {
            "us": {"pue": 1.1, "electricity_usd_per_mwh": {2026: 1, 2028: 2}, "block_mw": 5,
                   "block_capex_usd": 100, "build_lead_years": 1, "existing_mw": 5,
                   "max_mw": {"start": 20, "growth": 0.2}, "inference_demand_pflops": 1},
            "eu": {"pue": 1.2, "electricity_usd_per_mwh": 2, "block_mw": 3,
                   "block_capex_usd": {"2026": 50, "2027": 60}, "build_lead_years": 0},
        },
        "chips": {
            "a": {"price_usd": {"start": 100, "growth": -0.1}, "power_w": 1e6, "peak_pflops": 1,
                  "utilization": {"train": 0.5, "infer": 0.4}, "lifetime_years": 2,
                  "chips_per_unit": 2, "available_from": 2026, "available_until": 2027,
                  "opex_usd_per_chip_year": 1, "supply_units": 5,
                  "installed": [{"region": "us", "year": 2025, "chips": 2}]},
            "b": {"price_usd": 300, "power_w": 2e6, "peak_pflops": 4,
                  "utilization": {"train": 0.5, "infer": 0.5}, "lifetime_years": 3},
        },
        "serving": {"eu": {"eu": 1.0, "us": 0.8}},
    }


def _bases() -> list[dict]:
    out = [tiny(), rich(), generate_instance(2, 2, 3)]
    out += [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "instances").glob("tiny-*.yaml"))]
    for raw in out:  # the property is only meaningful if every starting point is valid
        load_instance(raw)
    return out


BASES = _bases()

# ------------------------------------------------------------------ bad values and keys

NAN, INF = float("nan"), float("inf")
SPECIAL_VALUES = [
    None, True, False, 0, -1, -0.0, 1, 0.5, 1.5, -2.5, 10**400, -(10**400), 10**5000, 2**63, 2**64 + 1,
    1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 1e-300, 1e18, NAN, INF, -INF,
    "", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e9", " 1.5e3 ", "0x10", "1_000", "2026",
    "2026x", "abc", "\x00", "\udcff", "é", "1" * 5000, b"\xff\xfe", 1899, 1900, 2200, 2201, -2026,
    [], {}, [1, 2], [None], {"a": 1}, {2026: 1}, {"start": 1, "growth": 0.1}, {"start": 1},
    {"growth": 1e300}, (1, 2), {1, 2}, datetime.date(2026, 1, 1),
]
SPECIAL_KEYS = ["", " ", None, True, 0, 2026, "2026", 2026.5, 10**400, NAN, "start", "growth",
                "region", "year", "chips", "pue", "name", "regions", "train", "infer", "é", "a.b",
                "x" * 300, datetime.date(2026, 1, 1), b"k", (1, 2)]
YEARISH = st.one_of(
    st.integers(YEAR_RANGE[0] - 150, YEAR_RANGE[1] + 150),
    st.integers(),
    st.sampled_from(["2027", " 2028 ", "2027.0", "2027x", "next year", "--5", "-2026", "²", "２０２７",
                     "1" * 5000, "", 2027.0, 2027.5, True, None, NAN, 10**400]),
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.binary(max_size=6),
)
values = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), scalars, max_size=3),
)
keys = st.one_of(st.sampled_from(SPECIAL_KEYS), st.text(max_size=10), st.integers())
numbers = st.one_of(st.sampled_from([0, 1, -1, 0.5, 1e-300, 5e-324, 1e308, -1e308, NAN, INF, -INF,
                                     10**400, "1e3", "nan"]), st.floats(), st.integers())
series = st.one_of(
    numbers,
    st.dictionaries(YEARISH, numbers, max_size=4),
    st.fixed_dictionaries({"start": numbers, "growth": numbers}),
    st.builds(lambda v, g, extra: {"start": v, "growth": g, **extra}, numbers, numbers,
              st.dictionaries(keys, numbers, max_size=2)),
)
horizons = st.one_of(
    st.builds(lambda s, e: {"start": s, "end": e}, YEARISH, YEARISH),
    st.sampled_from([
        {"start": 2030, "end": 2026},  # reversed
        {"start": YEAR_RANGE[0], "end": YEAR_RANGE[1]},  # enormous
        {"start": 2026, "end": 2026 + MAX_HORIZON_YEARS},  # one above the limit
        {"start": 2026, "end": 10**400},
        {"start": -(10**400), "end": 2026},
        {"start": 2026.0, "end": 2027.0},
        {"start": "2026", "end": "2027"},
        {"start": 2026},
        {"end": 2027},
        {"start": 2026, "end": 2027, "middle": 2026},
        {}, [2026, 2027], "2026-2030", 2026, None,
    ]),
)


# ------------------------------------------------------------------ mutations at key paths


def _paths(node, prefix=()):
    """Every key path of a raw instance as a tuple of keys and list indexes, the root first."""
    yield prefix
    if isinstance(node, dict):
        for k, v in list(node.items()):
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _get(raw, path):
    for k in path:
        raw = raw[k]
    return raw


def _set(raw, path, value):
    _get(raw, path[:-1])[path[-1]] = value


def _delete(raw, path):
    parent = _get(raw, path[:-1])
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])


def _pick(draw, options):
    return draw(st.sampled_from(options)) if options else None


def _region_ids(raw):
    regions = raw.get("regions")
    return list(regions) if isinstance(regions, dict) else []


def _chip_entries(raw):
    chips = raw.get("chips")
    return [g for g in chips.values() if isinstance(g, dict)] if isinstance(chips, dict) else []


MUTATIONS = ("replace", "replace", "replace", "delete", "add_key", "empty", "series", "reference",
             "installed", "horizon", "rename_id", "clone")


def mutate(draw, raw: dict) -> dict:
    """Apply one random mutation to ``raw`` in place (a no-op when it does not apply)."""
    kind = draw(st.sampled_from(MUTATIONS))
    paths = list(_paths(raw))
    inner = [p for p in paths if p]
    if kind == "replace" and inner:
        _set(raw, _pick(draw, inner), draw(values))
    elif kind == "delete" and inner:
        _delete(raw, _pick(draw, inner))
    elif kind == "add_key":
        path = _pick(draw, [p for p in paths if isinstance(_get(raw, p), dict)])
        if path is not None:
            _get(raw, path)[draw(keys)] = draw(values)
    elif kind == "empty":
        path = _pick(draw, [p for p in inner if isinstance(_get(raw, p), (dict, list))])
        if path is not None:
            _set(raw, path, draw(st.sampled_from([{}, [], None, ""])))
    elif kind == "series" and inner:
        _set(raw, _pick(draw, inner), draw(series))
    elif kind == "reference":
        ids = _region_ids(raw)
        known = st.sampled_from(ids) if ids else st.just("r")
        other = st.one_of(known, st.sampled_from(["mars", "", " ", "US", None, 7]), st.text(max_size=5))
        demand = draw(other)
        try:
            serving = raw.setdefault("serving", {})
            if isinstance(serving, dict):
                row = serving.setdefault(demand, {})
                if isinstance(row, dict):
                    row[draw(other)] = draw(st.one_of(st.sampled_from([1.0, 0.5, 0, 1.5, -1]), numbers))
        except TypeError:  # an unhashable key drawn from `other`: nothing to add
            pass
    elif kind == "installed":
        chip = _pick(draw, _chip_entries(raw))
        if chip is not None:
            ids = _region_ids(raw) or ["r"]
            entry = {"region": draw(st.one_of(st.sampled_from(ids), st.sampled_from(["mars", "", None, 3]))),
                     "year": draw(YEARISH),
                     "chips": draw(st.one_of(st.sampled_from([1, 0, 1e6]), numbers))}
            if draw(st.booleans()):
                entry[draw(keys)] = draw(values)
            if draw(st.booleans()):
                entry.pop(draw(st.sampled_from(["region", "year", "chips"])))
            lst = chip.get("installed")
            chip["installed"] = (lst if isinstance(lst, list) else []) + [entry]
    elif kind == "horizon":
        raw["horizon"] = draw(horizons)
    elif kind == "rename_id":
        section = raw.get(draw(st.sampled_from(["regions", "chips"])))
        if isinstance(section, dict) and section:
            old = draw(st.sampled_from(list(section)))
            section[draw(keys)] = section.pop(old)
    elif kind == "clone":
        name = draw(st.sampled_from(["regions", "chips"]))
        section = raw.get(name)
        if isinstance(section, dict) and section:
            first = next(iter(section.values()))
            limit = MAX_REGIONS if name == "regions" else MAX_CHIPS
            n = draw(st.sampled_from([1, 2, limit - len(section), limit + 1 - len(section)]))
            for i in range(max(n, 0)):
                section[f"clone{i}"] = first  # shared on purpose: the loader must not care
    return raw


@st.composite
def mutated_instances(draw, max_mutations=3):
    raw = _deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, max_mutations))):
        mutate(draw, raw)
    return raw


def _deepcopy(obj):
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy(v) for v in obj]
    return obj


# ------------------------------------------------------------------ the property


def _check_error(exc: InstanceError) -> None:
    assert exc.problems, "an InstanceError must list at least one problem"
    for p in exc.problems:
        assert isinstance(p.message, str) and p.message.strip(), p
        assert isinstance(p.path, str), p
        if p.path:
            head = re.split(r"[.\[]", p.path, maxsplit=1)[0]
            # a key path starts at a top-level section, unless it names an unknown top-level key
            assert head in SECTIONS or p.message.startswith("unknown key"), p
    assert str(exc)  # rendering (as the CLI does) must not fail either


def load_or_named_error(source) -> Instance | None:
    """The property for one input: an Instance, or an InstanceError naming paths; nothing else."""
    t0 = time.perf_counter()
    try:
        inst = load_instance(source)
    except InstanceError as exc:
        _check_error(exc)
        inst = None
    else:
        assert isinstance(inst, Instance)
        assert len(inst.hash) == 64  # reports hash the raw data: must work for every valid instance
    assert time.perf_counter() - t0 < LOAD_SECONDS, "loading took too long"
    return inst


def solves(inst: Instance) -> None:
    plan = solve(inst, time_limit=5)
    assert isinstance(plan, Plan)
    assert isinstance(plan.status, SolveStatus)


def small(inst: Instance) -> bool:
    return len(inst.years) * len(inst.regions) * len(inst.chips) <= 24


@settings(**FUZZ, max_examples=1000)
@given(raw=mutated_instances(), solve_ratio=st.integers(0, 7))
def test_mutated_mappings_load_or_name_a_path(raw, solve_ratio):
    inst = load_or_named_error(raw)
    if inst is not None and solve_ratio == 0 and small(inst):
        solves(inst)


# Values of the right type but at the edges of (or beyond) what a plan can hold: each loaded one is solved.
edge_numbers = st.one_of(
    st.sampled_from([0, 1, 2, 1e-12, 1e-300, 5e-324, 1e9, 1e15, 1e18, 1e30, 1e300, 1e308, 10**30,
                     2**53 + 1, 0.999999, 1.000001]),
    st.floats(min_value=0, max_value=1e308),
)


@st.composite
def edge_instances(draw):
    raw = _deepcopy(draw(st.sampled_from(BASES[:3])))
    numeric = [p for p in _paths(raw) if p and isinstance(_get(raw, p), (int, float))
               and not isinstance(_get(raw, p), bool)]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(numeric))
        value = draw(edge_numbers)
        if "horizon" in path or path[-1] in ("year", "available_from", "available_until"):
            value = draw(st.integers(YEAR_RANGE[0], YEAR_RANGE[1]))
        _set(raw, path, value)
    return raw


@settings(**FUZZ, max_examples=400)
@given(raw=edge_instances())
def test_extreme_numbers_load_and_solve_or_name_a_path(raw):
    inst = load_or_named_error(raw)
    if inst is not None and small(inst):
        solves(inst)


# ------------------------------------------------------------------ through real files

YAML_SNIPPETS = [
    "!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system", "!!binary '!!'",
    "!!int abc", "!!float .", "!!bool maybe", "!!timestamp nope", "2026-02-30", "!!set [1]", "!!omap {a: 1}",
    "*undefined", "&a [*a]", "&b x", "<<: *b", "{", "[", "]", "}", ": ", "? ", "- ", "\t", "---", "...",
    "%YAML 1.1", "!local x", "!<tag:yaml.org,2002:str> x", ".inf", ".nan", "~", "1" * 5000, "'", '"', "|", ">",
    "#", "@", "`", "\\", "\x00", "\x1b", "\ufeff", "\u2028", "\ud7ff",
]
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\xef\xbb\xbf",
             b"\x80\x80", b"\xc0\xaf"]


@st.composite
def mutated_files(draw) -> bytes:
    raw = draw(st.sampled_from(BASES))
    text = yaml.safe_dump(raw, default_flow_style=draw(st.sampled_from([None, True, False])))
    data = text.encode()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "insert", "insert", "bytes", "overwrite", "random"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "truncate":
            data = data[:pos]
        elif kind == "insert":
            snippet = draw(st.one_of(st.sampled_from(YAML_SNIPPETS), st.text(max_size=8)))
            data = data[:pos] + snippet.encode("utf-8", "surrogatepass") + data[pos:]
        elif kind == "bytes":
            data = data[:pos] + draw(st.one_of(st.sampled_from(BAD_BYTES), st.binary(max_size=6))) + data[pos:]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=4))
            data = data[:pos] + chunk + data[pos + len(chunk):]
        else:
            data = draw(st.binary(max_size=200))
    return data


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@settings(**FUZZ, max_examples=700)
@given(data=mutated_files())
def test_mutated_files_load_or_name_a_path(fuzz_dir, data):
    path = fuzz_dir / "inst.yaml"
    path.write_bytes(data)
    load_or_named_error(path)


# ------------------------------------------------------------------ file-level cases


def _write(tmp_path, text: str | bytes, name="inst.yaml") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def file_problem(path) -> str:
    """The one file-level problem of a file that must not load."""
    with pytest.raises(InstanceError) as info:
        load_instance(path)
    _check_error(info.value)
    assert [p.path for p in info.value.problems] == [""], info.value
    return info.value.problems[0].message


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {sentinel}']",
    "!!python/object/apply:subprocess.call [['touch', '{sentinel}']]",
    "!!python/object/new:os.system ['touch {sentinel}']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
])
def test_python_tags_are_rejected_never_executed(tmp_path, tag):
    sentinel = tmp_path / "executed"
    p = _write(tmp_path, f"name: {tag.format(sentinel=sentinel)}\nhorizon: {{start: 2026, end: 2026}}\n")
    msg = file_problem(p)
    assert "not valid YAML" in msg and "could not determine a constructor" in msg, msg
    assert not sentinel.exists()


def _bomb(levels=9, width=9) -> str:
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [
    _bomb(),  # the classic billion laughs: 9^9 "lol"s
    _bomb(levels=30, width=2),  # 2^30, deeper
    "name: x\ndescription: &d [" + ", ".join(["x"] * 10) + "]\n"
    + "".join(f"k{i}: &k{i} {{a: *{'d' if i == 0 else f'k{i - 1}'}, b: *{'d' if i == 0 else f'k{i - 1}'}}}\n"
              for i in range(40)),  # a mapping bomb, 2^40
])
def test_alias_bomb_fails_fast_in_little_memory(tmp_path, text):
    p = _write(tmp_path, text)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        msg = file_problem(p)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5
    assert peak < 50e6, f"peak {peak / 1e6:.0f} MB"
    assert f"more than {MAX_YAML_NODES:,} values once its aliases are expanded" in msg, msg
    assert msg.startswith("line "), msg


def test_recursive_alias_is_rejected(tmp_path):
    msg = file_problem(_write(tmp_path, "name: x\nregions: &r {a: *r}\n"))
    assert msg == "line 2, column 10: an alias refers to a node that contains it (a recursive document)"


def test_aliases_within_the_limits_still_load(tmp_path):
    text = yaml.safe_dump(rich()).replace("pue: 1.2", "pue: &pue 1.2").replace("pue: 1.1", "pue: *pue")
    text += "\n"
    p = _write(tmp_path, text.replace("utilization:\n      infer: 0.5\n      train: 0.5",
                                      "utilization: &u {infer: 0.5, train: 0.5}"))
    inst = load_instance(p)
    assert inst.regions["us"].pue == inst.regions["eu"].pue == 1.2


def test_file_above_the_size_limit(tmp_path):
    p = tmp_path / "huge.yaml"
    with open(p, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: instant whatever the limit
    assert file_problem(p) == f"file is {MAX_FILE_BYTES + 1:,} bytes, above the limit of {MAX_FILE_BYTES:,}"


def test_document_with_too_many_values_is_stopped_while_read(tmp_path):
    text = "name: x\nlots: [" + "0," * (MAX_YAML_NODES + 10) + "]\n"
    assert len(text) < MAX_FILE_BYTES
    p = _write(tmp_path, text)
    t0 = time.perf_counter()
    msg = file_problem(p)
    assert time.perf_counter() - t0 < 30
    assert re.fullmatch(rf"line 2, column \d+: the document has more than {MAX_YAML_NODES:,} values", msg), msg


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,
    "a: " + "{b: " * 50_000 + "1" + "}" * 50_000,
    "".join(" " * i + "- \n" for i in range(3000)),
    "name: " + "[" * 100_000,  # deep and truncated
])
def test_deeply_nested_yaml(tmp_path, text):
    msg = file_problem(_write(tmp_path, text))
    assert "too deep" in msg or "not valid YAML" in msg, msg


def test_moderately_nested_value_is_a_validation_error(tmp_path):
    raw = tiny()
    raw["chips"]["g"]["power_w"] = "NEST"
    text = yaml.safe_dump(raw).replace("NEST", "[" * 100 + "1" + "]" * 100)
    with pytest.raises(InstanceError) as info:
        load_instance(_write(tmp_path, text))
    assert [str(p) for p in info.value.problems] == ["chips.g.power_w: must be a number, got a list"]


@pytest.mark.parametrize("data, expect", [
    (b"name: x\n\xff\xfe\n", "line 2: file is not valid UTF-8 text"),
    (b"\xed\xa0\x80", "line 1: file is not valid UTF-8 text"),  # an encoded surrogate
    (b"name: x\nhorizon: {start: 2026,\n  end: \x00}\n", "line 3: not valid YAML: unacceptable character #x0000"),
    (b"", "line 1: the file must be a YAML mapping of sections, got empty"),
    (b"name: x\nhorizon: {start: 2026, end", "line 3, column 1: not valid YAML"),  # truncated
    (b"name: 2026-02-30\n", "line 1, column 7: not valid YAML: cannot read '2026-02-30' as timestamp"),
    (b"name: !!int abc\n", "line 1, column 7: not valid YAML: cannot read 'abc' as int"),
    (b"name: !!bool maybe\n", "line 1, column 7: not valid YAML: cannot read 'maybe' as bool"),
    (b"name: !!timestamp soon\n", "line 1, column 7: not valid YAML: cannot read 'soon' as timestamp"),
    (b"name: " + b"9" * 5000 + b"\n", "line 1, column 7: not valid YAML: cannot read '99999"),
])
def test_file_level_problems_name_the_line(tmp_path, data, expect):
    assert file_problem(_write(tmp_path, data)).startswith(expect)


# ------------------------------------------------------------------ the limits and their messages


def test_horizon_limit():
    ok = tiny(horizon={"start": 2026, "end": 2026 + MAX_HORIZON_YEARS - 1})
    assert len(load_instance(ok).years) == MAX_HORIZON_YEARS
    with pytest.raises(InstanceError) as info:
        load_instance(tiny(horizon={"start": 2026, "end": 2026 + MAX_HORIZON_YEARS}))
    assert [str(p) for p in info.value.problems] == [
        f"horizon: {MAX_HORIZON_YEARS + 1} years is above the limit of {MAX_HORIZON_YEARS}"]


@pytest.mark.parametrize("section, one, limit", [("regions", "r", MAX_REGIONS), ("chips", "g", MAX_CHIPS)])
def test_section_size_limit(section, one, limit):
    raw = tiny()
    entry = raw[section][one]
    raw[section] = {f"{one}{i}": dict(entry) for i in range(limit)}
    assert len(getattr(load_instance(raw), section)) == limit
    raw[section]["one-more"] = dict(entry)
    with pytest.raises(InstanceError) as info:
        load_instance(raw)
    assert [str(p) for p in info.value.problems] == [
        f"{section}: {limit + 1} {section} is above the limit of {limit}"]


def test_largest_instance_the_limits_allow_loads(tmp_path):
    """Every limit at its maximum, every series listed year by year: under the file and value limits."""
    raw = generate_instance(MAX_REGIONS, MAX_CHIPS, MAX_HORIZON_YEARS)
    years = range(2026, 2026 + MAX_HORIZON_YEARS)
    for r in raw["regions"].values():
        for k in ("electricity_usd_per_mwh", "max_mw", "block_capex_usd", "inference_demand_pflops"):
            r[k] = {t: 1000.5 + i for i, t in enumerate(years)}
    for g in raw["chips"].values():
        for k in ("price_usd", "supply_units"):
            g[k] = {t: 1000.5 + i for i, t in enumerate(years)}
    raw["serving"] = {d: {s: 0.9 for s in raw["regions"]} for d in raw["regions"]}
    p = _write(tmp_path, yaml.safe_dump(raw))
    assert p.stat().st_size < MAX_FILE_BYTES
    inst = load_instance(p)
    assert len(inst.regions) == MAX_REGIONS and len(inst.chips) == MAX_CHIPS


# ------------------------------------------------------------------ bugs the fuzzing found (regressions)


@pytest.mark.parametrize("path, value, expect", [
    ("chips.g.power_w", 10**400, "chips.g.power_w: must be a finite number, got an integer of 401 digits"),
    ("chips.g.power_w", -(10**5000), "chips.g.power_w: must be a finite number, got an integer of 5001 digits"),
    ("horizon.end", 10**400, "horizon.end: must be <= 2200, got an integer of 401 digits"),
    ("objective.kind", 10**5000, "objective.kind: must be one of max_training, min_cost, got an integer of 5001"),
    ("regions.r.max_mw", {"--5": 1}, "regions.r.max_mw.--5: series year must be an integer year, got '--5'"),
    ("regions.r.max_mw", {"²": 1}, "regions.r.max_mw.²: series year must be an integer year, got '²'"),
    ("regions.r.max_mw", {"7" * 5000: 1}, "regions.r.max_mw.777"),
    ("chips.g.installed", [{"region": 10**5000, "year": 2020, "chips": 1}],
     "chips.g.installed[0].region: unknown region an integer of 5001 digits (defined: r)"),
    ("", "", "'': unknown key"),
    ("chips.g.power_w", 5e-324, "chips.g.power_w: must be 0 or at least 1e-12 in magnitude, got 5e-324"),
    ("chips.g.price_usd", {"start": 3e306, "growth": -0.05},
     "chips.g.price_usd.start: must be at most 1e+16 in magnitude, got 3e+306"),
    ("chips.g.price_usd", {"start": 1e15, "growth": 99}, "chips.g.price_usd: grows beyond 1e+16 by"),
    ("chips.g.price_usd", {"start": 1e-10, "growth": -0.999}, "chips.g.price_usd: shrinks below 1e-12 by"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else type(v).__name__)
def test_found_by_fuzzing(path, value, expect):
    raw = tiny()
    if path:
        *parents, last = path.split(".")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    else:
        raw[value] = 1  # a blank top-level key
    with pytest.raises(InstanceError) as info:
        load_instance(raw)
    _check_error(info.value)
    assert any(str(p).startswith(expect) for p in info.value.problems), info.value


def test_exact_big_integers_are_integers():
    """2**53 + 1 is an integer even though float() would round it."""
    inst = load_instance(tiny(chips__g__lifetime_years=2**53 + 1))
    assert inst.chips["g"].lifetime_years == 2**53 + 1


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize("data", [
    bytes(range(256)) * 4,
    _bomb().encode(),
    b"name: !!python/object/apply:os.system ['echo pwned']\n",
    b"name: 2026-02-30\n",
])
def test_cli_validate_garbage_exits_3_without_traceback(tmp_path, data):
    p = _write(tmp_path, data)
    proc = subprocess.run([sys.executable, "-m", "optimizer", "validate", str(p)], capture_output=True,
                          text=True, errors="replace", timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "invalid instance" in proc.stderr and "pwned" not in proc.stdout

