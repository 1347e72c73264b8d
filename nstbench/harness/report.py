"""The report builder: results/ -> reports/ (Markdown reports per source, a claims index, an HTML site).

Everything comes from the experiments' `manifest.json` files and the CSVs and PNGs they list; the
builder computes nothing new except re-evaluating each claim from its CSV (the manifest says which
CSV and filter), so a report always agrees with the tables beside it.

Results are laid out as <results>/<profile>/<weight set>/<experiment>/ (experiment.result_dir), and
a report never mixes two (profile, weight set) pairs: each pair gets its own reports,
<out>/<profile>/<set>/<source>.md and .html, and <out>/index.md (and index.html) is the claims
index with one verdict column per weight set for each profile. A report is a list of blocks
(heading, paragraph, table, image) rendered twice: to Markdown and to an HTML page; both link the
figures relative to the page (into results/), so the pages stay small.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config import claims as claims_mod
from ..config.errors import NstbenchError
from ..config.profiles import PROFILE_NAMES
from ..config.sources import SOURCES, Source
from ..nets.records import atomic_write_text, ensure_writable_dir, output_lock
from . import registry

RANDOM_BANNER = (
    "**Random-weight run.** These numbers come from seeded random backbone weights, not the "
    "ImageNet weights the sources used: they test the pipeline, not the sources' claims, and "
    "cannot be compared with the sources' numbers."
)
MAX_TABLE_ROWS = 40  # larger CSVs (per-iteration curves) are linked, not printed

# What a verdict on other weights than the source's ImageNet ones does not test: one text per weight
# set (or stand-in family), quoted by the index and the reports alike.
CAVEATS = {
    "random": "random weights: tests the pipeline only, not the source's claim",
    "hed": "HED VGG16 trunk (ImageNet VGG16 fine-tuned for edge detection): a stand-in, not the source's weights",
    "other": "not the source's ImageNet weights: not a test of the source's claim as stated",
    # a stand-in run of a source whose weights family is torchvision (NYU, UPES, pytorch-examples)
    "loss_balance": "this source's loss weights were tuned for torchvision's activation scale; on the stand-in "
    "(Caffe convention) its content/style balance is off by a factor nobody here can measure",
    "smoke": "plumbing only",
}
STANDIN_SETS = ("hed",)  # weight sets that are stand-ins (records.weight_set names them by family)
SET_ORDER = ("random", *STANDIN_SETS, "imagenet")  # the index's columns, others after these
PROFILE_ORDER = tuple(reversed(PROFILE_NAMES))  # paper, cpu, smoke: the most faithful first
RATIO_PREFIX = "ratio_to_"  # columns dividing our number by the source's (E7's ratio_to_source)


def set_label(wset: str) -> str:
    """The index's column name of a weight set: "hed (stand-in)", "random", "imagenet"."""
    return f"{wset} (stand-in)" if wset in STANDIN_SETS else wset


def set_caveat(wset: str) -> str | None:
    """The caveat every verdict on this weight set carries (None for ImageNet weights)."""
    if wset == "imagenet":
        return None
    return CAVEATS.get(wset, CAVEATS["other"])


def _sets_sorted(sets) -> list[str]:
    return sorted(sets, key=lambda s: (SET_ORDER.index(s) if s in SET_ORDER else len(SET_ORDER), s))


def _profiles_sorted(profiles) -> list[str]:
    return sorted(profiles, key=lambda p: (PROFILE_ORDER.index(p) if p in PROFILE_ORDER else len(PROFILE_ORDER), p))


@dataclass(frozen=True)
class Link:
    """A table cell linking another report page: `page` is its Markdown file; HTML links the .html."""

    text: str
    page: Path
    anchor: str = ""
    suffix: str = ""  # after the link (footnote marks)


@dataclass
class Doc:
    """A report as blocks: ("h", level, text) | ("p", text) | ("table", DataFrame) | ("img", Path, caption)
    | ("file", Path, text): a paragraph ending in a link to a file (relative to the page, as images)."""

    title: str
    blocks: list = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, df: pd.DataFrame) -> None:
        self.blocks.append(("table", df))

    def img(self, path: Path, caption: str) -> None:
        self.blocks.append(("img", path, caption))

    def file(self, path: Path, text: str) -> None:
        self.blocks.append(("file", path, text))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, Path):  # a file a table cell names (see _file_cells)
        return v.name
    if isinstance(v, Link):
        return v.text + v.suffix
    return str(v)


def _rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target, base)).as_posix()


def _md_cell(v, base: Path) -> str:
    if isinstance(v, Path):  # a link that works from the report's folder, not only from the results'
        return f"[{v.name}]({_rel(v, base)})"
    if isinstance(v, Link):
        return f"[{v.text}]({_rel(v.page, base)}){v.suffix}"
    return _fmt(v)


def _md_table(df: pd.DataFrame, base: Path) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v, base).replace("|", "\\|").replace("\n", " ") for v in row) + " |")
    return "\n".join(lines)


def _file_cells(df: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Cells naming a file of the experiment folder (outputs/x.png) become Paths, so the report
    can link them relative to wherever it is written."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object or pd.api.types.is_string_dtype(df[c]):
            df[c] = [
                folder / v if isinstance(v, str) and v.endswith(".png") and (folder / v).is_file() else v for v in df[c]
            ]
    return df


def split_constant_columns(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The table without the columns that hold one value in every row, and those values as one line
    ("weights: random · weights_id: random (seed 0) · seed: 0"): every CSV row repeats the run's
    weights, device and seed, which only widen a table past the page."""
    if len(df) < 2:
        return df, ""
    constant = [c for c in df.columns if df[c].astype(str).nunique(dropna=False) == 1]
    if len(constant) == len(df.columns):
        return df, ""
    line = " · ".join(f"{c}: {_fmt(df[c].iloc[0])}" for c in constant)
    return df.drop(columns=constant), line


def to_markdown(doc: Doc, base: Path) -> str:
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if b[0] == "h":
            out += ["#" * b[1] + " " + b[2], ""]
        elif b[0] == "p":
            out += [b[1], ""]
        elif b[0] == "table":
            out += [_md_table(b[1], base), ""]
        elif b[0] == "img":
            out += [f"![{b[2]}]({_rel(b[1], base)})", ""]
        elif b[0] == "file":
            out += [f"{b[2]}[{b[1].name}]({_rel(b[1], base)}).", ""]
    return "\n".join(out)


_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _inline_md(text: str) -> str:
    """The little Markdown our paragraphs use: **bold**, `code` and [links](x.md) (-> x.html)."""
    s = html.escape(text)
    parts = s.split("**")
    s = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = s.split("`")
    s = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    return _MD_LINK.sub(lambda m: f'<a href="{_html_target(m.group(2))}">{m.group(1)}</a>', s)


def _html_target(href: str) -> str:
    """A link to a Markdown report is a link to its HTML page on the site."""
    path, _, anchor = href.partition("#")
    if path.endswith(".md"):
        path = path[:-3] + ".html"
    return path + ("#" + anchor if anchor else "")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _html_cell(v, base: Path) -> str:
    if isinstance(v, Path):
        return f'<a href="{html.escape(_rel(v, base))}">{html.escape(v.name)}</a>'
    if isinstance(v, Link):
        href = _html_target(_rel(v.page, base)) + (f"#{v.anchor}" if v.anchor else "")
        return f'<a href="{html.escape(href)}">{html.escape(v.text)}</a>{html.escape(v.suffix)}'
    return html.escape(_fmt(v))


def to_html_page(doc: Doc, base: Path, home: Path | None = None) -> str:
    """One HTML page: a table of contents of its sections, tables in a horizontally scrolling box,
    figures as links to the PNG files (relative to `base`, the page's folder)."""
    body, toc, used = [], [], set()
    for b in doc.blocks:
        if b[0] == "h":
            anchor = slug(b[2])
            while anchor in used:
                anchor += "-x"
            used.add(anchor)
            n = min(6, b[1])
            if n <= 3:
                toc.append(f'<li class="l{n}"><a href="#{anchor}">{html.escape(b[2])}</a></li>')
            body.append(f'<h{n} id="{anchor}">{html.escape(b[2])}</h{n}>')
        elif b[0] == "p":
            body.append(f"<p>{_inline_md(b[1])}</p>")
        elif b[0] == "table":
            df = b[1]
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_cell(v, base)}</td>" for v in r) + "</tr>"
                for r in df.itertuples(index=False)
            )
            body.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>')
        elif b[0] == "file":
            body.append(
                f'<p>{_inline_md(b[2])}<a href="{html.escape(_rel(b[1], base))}">{html.escape(b[1].name)}</a>.</p>'
            )
        elif b[0] == "img":
            src = html.escape(_rel(b[1], base))
            body.append(
                f'<figure><a href="{src}"><img alt="{html.escape(b[2])}" src="{src}" loading="lazy"></a>'
                f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
            )
    nav = f'<p class="home"><a href="{html.escape(_rel(home, base))}">&larr; claims index</a></p>' if home else ""
    contents = f'<nav class="toc"><strong>Contents</strong><ul>{"".join(toc)}</ul></nav>' if len(toc) > 1 else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(doc.title)}</title>"
        f"<meta name='viewport' content='width=device-width'><style>{HTML_STYLE}</style></head><body>"
        f"{nav}<h1>{html.escape(doc.title)}</h1>{contents}\n" + "\n".join(body) + "\n</body></html>\n"
    )


HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;"
    "overflow-wrap:break-word}"
    ".scroll{overflow-x:auto;max-width:100%;margin:1em 0}"
    "table{border-collapse:collapse;font-size:85%}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}"
    "td{max-width:36em;overflow-wrap:break-word}"
    "th{background:#f3f3f3;white-space:nowrap}img{max-width:100%}figure{margin:1em 0}code{background:#f3f3f3}"
    "nav.toc{background:#f7f7f7;border:1px solid #ddd;padding:.5em 1em;margin:1em 0}"
    "nav.toc ul{margin:.3em 0;padding-left:1.2em}nav.toc li.l3{margin-left:1.2em;font-size:90%}"
)


# ---- results ------------------------------------------------------------------------------------


def load_manifests(results: Path) -> dict[tuple[str, str], dict[str, dict]]:
    """(profile, weight set) -> {experiment: manifest} of the complete experiment folders under
    <results>/<profile>/<set>/<experiment>/ (a folder without a complete manifest is not a result;
    temp folders of running experiments start with a dot)."""
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for m in sorted(Path(results).glob("*/*/*/manifest.json")):
        profile, wset, name = m.parts[-4:-1]
        if any(part.startswith(".") for part in (profile, wset, name)):
            continue
        try:
            data = json.loads(m.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("status") == "complete":
            out.setdefault((profile, wset), {})[name] = data | {"_dir": str(m.parent)}
    return out


def reevaluate(manifest: dict, claim_id: str) -> dict:
    """The claim's verdict recomputed from the CSV and filter recorded in the manifest."""
    rec = manifest["claims"][claim_id]
    df = pd.read_csv(Path(manifest["_dir"]) / rec["csv"])
    if rec.get("where"):
        df = df.query(rec["where"])
    return registry.evaluate(claim_id, df) | {k: rec.get(k) for k in ("csv", "where", "weights", "profile", "caveat")}


def _presets_of(settings) -> list[tuple[str, str]]:
    """(name, weights family) of every preset recorded in an experiment's settings, in order, once each."""
    found: list[tuple[str, str]] = []

    def visit(v) -> None:
        if isinstance(v, dict):
            if {"name", "source", "backbone"} <= set(v):  # a Gatys or fast preset
                entry = (v["name"], v.get("weights", "unrecorded"))  # manifests before the weights field
                if entry not in found:
                    found.append(entry)
            else:
                for x in v.values():
                    visit(x)
        elif isinstance(v, list):
            for x in v:
                visit(x)

    visit(settings)
    return found


def source_families(m: dict) -> set[str]:
    """The weight families the experiment's presets name (the sources' own ImageNet weights)."""
    return {w for _, w in _presets_of(m.get("settings", {}))}


def own_imagenet(m: dict) -> bool:
    """The run's backbones had the source's own ImageNet weights: every record of kind imagenet and
    of a family the experiment's presets name (not a substitute, not a stand-in, not random)."""
    records = list(m.get("weights", {}).values())
    fams = source_families(m)
    return bool(records) and all(r.get("kind") == "imagenet" and r.get("family") in fams for r in records)


def verdict_caveats(wset: str, m: dict) -> list[str]:
    """The caveats a verdict of this run carries: its weight set's, and on a stand-in, the loss
    balance of a source whose weights family is torchvision."""
    out = [c for c in [set_caveat(wset)] if c]
    if wset in STANDIN_SETS and "torchvision" in source_families(m):
        out.append(CAVEATS["loss_balance"])
    return out


def _weights_that_ran(manifests: dict[str, dict]) -> str:
    labels = sorted({f"{a}: {w}" for m in manifests.values() for a, w in m.get("weights_labels", {}).items()})
    return "; ".join(labels) or "unrecorded"


def weights_banner(profile: str, wset: str, manifests: dict[str, dict]) -> str:
    """The first paragraph of a per-set report: which weights ran and what that allows."""
    ran = _weights_that_ran(manifests)
    if wset == "random":
        text = f"{RANDOM_BANNER} Weights that ran: {ran}."
    elif wset == "imagenet":
        text = f"**ImageNet weights.** Weights that ran: {ran}."
        if not all(own_imagenet(m) for m in manifests.values()):
            text += " Some experiments ran another family's ImageNet weights than their source's (see each section)."
    elif wset in STANDIN_SETS:
        text = f"**Stand-in weights ({wset}).** {CAVEATS[wset]}. Weights that ran: {ran}."
    else:
        text = f"**Weights: {wset}.** {CAVEATS['other']}. Weights that ran: {ran}."
    if profile == "smoke":
        text += " **Smoke profile:** tiny sizes and a few steps, " + CAVEATS["smoke"] + "."
    return text


# ---- reports ------------------------------------------------------------------------------------


def report_page(out: Path, profile: str, wset: str, source: str) -> Path:
    """reports/<profile>/<set>/<source>.md (the .html beside it), mirroring results/."""
    return Path(out) / profile / wset / f"{source}.md"


def _common_notes(sections: list[dict]) -> list[str]:
    """Notes that more than one experiment section of a page would repeat: said once at the top."""
    seen: dict[str, int] = {}
    for m in sections:
        for n in m.get("notes", []):
            seen[n] = seen.get(n, 0) + 1
    return [n for n, k in seen.items() if k > 1]


def _experiment_section(doc: Doc, name: str, m: dict | None, wset: str, said: set[str]) -> None:
    if m is None:
        doc.h(2, name)
        doc.p(f"Not run yet: `make {name.split('_')[0]}` (or `python experiments/{name}.py --profile cpu`).")
        return
    folder = Path(m["_dir"])
    doc.h(2, f"{name}: {m.get('title', '')}".rstrip(": "))
    prov = m.get("provenance", {})
    labels = "; ".join(f"{a}: {w}" for a, w in m.get("weights_labels", {}).items())
    doc.p(
        f"Profile `{m.get('profile_label', m.get('profile'))}`, weights **{m.get('weights_kind')}**"
        f"{f' ({labels})' if labels else ''}, device "
        f"`{m.get('device')}`, seed {m.get('seed')}, wall time {m.get('wall_seconds')} s, nstbench commit "
        f"`{str(prov.get('commit'))[:12]}`{' (uncommitted changes)' if prov.get('dirty') else ''}, torch "
        f"{prov.get('torch')}."
    )
    presets = _presets_of(m.get("settings", {}))
    if presets:
        doc.p(
            "Presets: "
            + ", ".join(f"`{n}` (source weights family: {w})" for n, w in presets)
            + f"; this run's backbone weights: **{m.get('weights_kind')}**."
        )
    caveats = [c for c in verdict_caveats(wset, m) if c == CAVEATS["loss_balance"]]
    for c in caveats:  # the set's own caveat is in the banner; this one depends on the source
        doc.p(f"Caveat: {c}.")
    for note in m.get("notes", []):
        if note not in said:
            doc.p(note)
    if m.get("claims"):
        rows = []
        for cid in sorted(m["claims"]):
            v = reevaluate(m, cid)
            rows.append({"claim": cid, "verdict": v["verdict"], "measured": v["measured"], "rule": v["rule"]})
        doc.h(3, "Claims")
        doc.table(pd.DataFrame(rows))
    ours = own_imagenet(m)
    for f in m.get("files", []):
        p = folder / f
        if p.suffix == ".csv":
            df = pd.read_csv(p)
            doc.h(3, f)
            if len(df) > MAX_TABLE_ROWS:
                doc.file(p, f"{len(df)} rows: see ")
                continue
            ratios = [c for c in df.columns if str(c).startswith(RATIO_PREFIX)]
            if ratios and not ours:  # a ratio to the source's ImageNet number means something only on those weights
                df = df.drop(columns=ratios)
                doc.p(
                    f"Column {', '.join(ratios)} left out: it divides this run's number by the source's, which "
                    "came from the source's own ImageNet weights, and this run did not have them."
                )
            df, constant = split_constant_columns(df.drop(columns=[c for c in ("profile",) if c in df.columns]))
            if constant:
                doc.p(f"In every row: {constant}.")
            doc.table(_file_cells(df, folder))
    for f in m.get("files", []):
        p = folder / f
        if p.suffix == ".png" and "/" not in f:  # figures; per-run output images stay in outputs/
            doc.img(p, f"{name}: {p.stem}")


def source_experiments(src: Source) -> list[str]:
    """The experiments whose Spec names this source (registry order: e1, e2, ..., e10)."""
    return [name for name, spec in registry.specs().items() if src.key in spec.sources]


def source_report(src: Source, manifests: dict[str, dict], profile: str = "", wset: str = "random") -> Doc:
    """One source's report on one (profile, weight set): `manifests` are that pair's only."""
    doc = Doc(src.title + (f" ({profile}, {set_label(wset)})" if profile else ""))
    experiments = source_experiments(src)
    ran = {e: manifests[e] for e in experiments if e in manifests}
    if ran:
        doc.p(weights_banner(profile, wset, ran))
    where = f"`shared/seeds/{src.seed}`" if src.seed else src.paper
    doc.p(f"Source: {where}. Experiments: {', '.join(experiments)}.")
    common = _common_notes(list(ran.values()))
    if common:
        doc.p("Every experiment below: " + " ".join(n.rstrip(".") + "." for n in common))
    if src.own_numbers:
        doc.h(2, "The source's own numbers")
        doc.table(pd.DataFrame(src.own_numbers, columns=["what", "source"]))
    for e in experiments:
        _experiment_section(doc, e, manifests.get(e), wset, set(common))
    return doc


def _verdict_cell(profile: str, wset: str, cid: str, name: str, m: dict, out: Path) -> tuple[Link, str, list[str]]:
    """The index cell of one claim on one (profile, set): the verdict linking the report that shows
    the experiment, and the caveats it carries."""
    v = reevaluate(m, cid)["verdict"]
    spec = registry.specs().get(name)
    source = spec.sources[0] if spec and spec.sources else SOURCES[0].key
    text = v + (f" ({CAVEATS['smoke']})" if profile == "smoke" else "")
    return (
        Link(text, report_page(out, profile, wset, source), slug(f"{name}: {m.get('title', '')}")),
        v,
        (verdict_caveats(wset, m)),
    )


def claims_index(groups: dict[tuple[str, str], dict[str, dict]], out: Path) -> Doc:
    """Per profile, one table: each claim's verdict under every weight set that has results, a
    column marking claims whose verdicts differ between sets, the caveats as footnotes."""
    doc = Doc("nstbench: claims index")
    doc.p(
        "Each verdict is computed from the experiment's CSV by the rule in its report (nstbench/config/claims.py) "
        "and links that report; `inconclusive` means the table cannot decide. Verdicts of different "
        "profiles or weight sets are never mixed: each column is one weight set, each table one profile."
    )
    for profile in _profiles_sorted({p for p, _ in groups}):
        sets = _sets_sorted({s for p, s in groups if p == profile})
        doc.h(2, f"Profile {profile}" + (f" ({CAVEATS['smoke']})" if profile == "smoke" else ""))
        notes: list[str] = []  # caveat texts, numbered in order of first use

        def mark(texts: list[str]) -> str:
            for t in texts:
                if t not in notes:
                    notes.append(t)
            return "".join(f" [{notes.index(t) + 1}]" for t in texts)

        rows = []
        for cid, claim in claims_mod.CLAIMS.items():
            row: dict = {"claim": cid, "source": claim.source, "text": claim.text}
            verdicts = []
            for wset in sets:
                found = [(n, m) for n, m in groups[(profile, wset)].items() if cid in m.get("claims", {})]
                if not found:
                    name = registry.experiment_of_claim(cid)
                    row[set_label(wset)] = f"not run (`make {name.split('_')[0]}`)" if name else "not run"
                    continue
                link, verdict, caveats = _verdict_cell(profile, wset, cid, *found[0], out)
                row[set_label(wset)] = Link(link.text, link.page, link.anchor, mark(caveats))
                verdicts.append(verdict)
            if len(sets) > 1:
                row["sets differ"] = "**differs**" if len(set(verdicts)) > 1 else ""
            rows.append(row)
        doc.table(pd.DataFrame(rows))
        for i, t in enumerate(notes, 1):
            doc.p(f"[{i}] {t}.")
    doc.h(2, "Reports")
    for profile, wset in sorted(groups, key=lambda k: (_profiles_sorted([k[0]]), k)):
        doc.p(
            f"{profile}, {set_label(wset)}: "
            + " · ".join(f"[{s.key}]({_rel(report_page(out, profile, wset, s.key), out)})" for s in SOURCES)
        )
    return doc


def build_reports(results: str | Path = "results", out: str | Path = "reports") -> list[Path]:
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise NstbenchError(f"results folder not found: {results} (make reproduce, or an experiment script, writes it)")
    groups = load_manifests(results)
    if not groups:
        raise NstbenchError(
            f"{results} holds no complete experiment results (no <profile>/<weight set>/<experiment>/manifest.json "
            "with status complete); run `make reproduce` or an experiment script first"
        )
    if out.exists() and not out.is_dir():
        raise NstbenchError(f"--out {out} is a file; give a folder for the reports")
    ensure_writable_dir(out)
    with output_lock(out, "report"):
        return _write_reports(groups, out)


def _write_page(doc: Doc, md: Path, home: Path | None) -> list[Path]:
    md.parent.mkdir(parents=True, exist_ok=True)
    return [
        atomic_write_text(md, to_markdown(doc, md.parent)),
        atomic_write_text(md.with_suffix(".html"), to_html_page(doc, md.parent, home)),
    ]


def _write_reports(groups: dict[tuple[str, str], dict[str, dict]], out: Path) -> list[Path]:
    written = []
    for (profile, wset), manifests in groups.items():
        for s in SOURCES:
            doc = source_report(s, manifests, profile, wset)
            written += _write_page(doc, report_page(out, profile, wset, s.key), out / "index.html")
    written += _write_page(claims_index(groups, out), out / "index.md", None)
    return written
