"""The report builder: results/ -> reports/ (one Markdown report per source, an index of claims, HTML).

Everything comes from the experiments' `manifest.json` files and the CSVs and PNGs they list; the
builder computes nothing new except re-evaluating each claim from its CSV (the manifest says which
CSV and filter), so a report always agrees with the tables beside it. A report is a list of blocks
(heading, paragraph, table, image) rendered twice: to Markdown (figures linked relative to
reports/) and to one self-contained HTML file (figures embedded as data URIs).
"""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import claims as claims_mod
from . import registry
from .errors import NstbenchError
from .records import atomic_write_text, ensure_writable_dir, output_lock

RANDOM_BANNER = (
    "**Random-weight run.** These numbers come from seeded random backbone weights, not the "
    "ImageNet weights the sources used: they test the pipeline, not the sources' claims, and "
    "cannot be compared with the sources' numbers."
)
MAX_TABLE_ROWS = 40  # larger CSVs (per-iteration curves) are linked, not printed


@dataclass(frozen=True)
class Source:
    key: str  # experiments name it in their Spec(sources=...) to appear in this report
    title: str
    seed: str  # the seed report's file in shared/seeds ("" for a paper, which has no seed file)
    own_numbers: tuple[tuple[str, str], ...] = ()  # (what, value) quoted from the source
    paper: str = ""  # the publication (and its official code), for a paper's report


SOURCES = (
    Source(
        "hust",
        "HUST computer-vision course report (Gatys + TV, Johnson fast transfer, timing)",
        "000_09ab2c0b738b0cea.txt",
        (
            ("Vanilla style transfer, 1000 Adam iterations (s)", "49.43"),
            ("Fast style transfer, one forward pass (s)", "0.04"),
            ("Speed-up stated", "1000x"),
            ("TV weights shown", "gamma in {0, 10, 100}"),
        ),
    ),
    Source(
        "iitb",
        "IIT Bombay CS725 report (VGG19 vs ResNet50, style-layer table)",
        "001_c2c77009bd561117.txt",
        (
            ("Table 1, VGG19 {1..5}: total / style / content", "9.34e6 / 3.59e6 / 5.74e6"),
            ("Table 1, ResNet50 {1..5}: total / style / content", "1.15e3 / 1.11e3 / 2.98"),
            ("Images", "Mumbai Sea Link with Starry Night"),
        ),
    ),
    Source(
        "nyu",
        "NYU report (Gatys init; Johnson content layer and batch size)",
        "002_9797a248db40b906.txt",
        (("Best content layer", "relu2_2"), ("Batch size", "no significant difference")),
    ),
    Source(
        "yonsei",
        "Yonsei report (summary of Gatys et al. and Johnson et al.)",
        "003_346465eb4c80e994.txt",
        (
            (
                "Content reconstruction (Fig. 3 text)",
                "the higher the layer, the more detailed pixel information is crushed",
            ),
            (
                "alpha/beta ratio (section 1.3)",
                "the larger the ratio, the closer the content; the smaller, the closer the style",
            ),
            (
                "Gatys' method as summarised",
                "VGG (16 conv and 5 pooling layers, no fully connected layers, filters "
                "normalised to mean activation 1); content: squared feature error; style: "
                "Gram matrices over several layers; gradient descent from white noise",
            ),
            (
                "Johnson's method as summarised",
                "image transformation network (stride-2 convolutions down, residual "
                "blocks, stride-1/2 convolutions up), 3 x 256 x 256 input, trained with "
                "VGG-16 feature and style reconstruction losses",
            ),
        ),
    ),
    Source(
        "gatys2016",
        "Gatys et al., Image Style Transfer Using CNNs (CVPR 2016) and its official code",
        "",
        (
            ("Fig. 1 content reconstructions", "from higher layers colour, texture and exact shape are not preserved"),
            ("alpha/beta in Fig. 3", "1e-4, 1e-3, 1e-2, 1e-1 (rows of the figure)"),
            ("Average vs max pooling", "average pooling improves the gradient flow, slightly more appealing results"),
            ("Optimiser", "L-BFGS, which we found to work best for image synthesis"),
            *(
                (f"Official code (gatys2016-code), printed total loss at iteration {i}", v)
                for i, v in (
                    (50, "1388532.5"),
                    (100, "707860.75"),
                    (150, "538045.4375"),
                    (200, "469374.875"),
                    (250, "433804.625"),
                    (300, "411657.5625"),
                    (350, "395248.25"),
                    (400, "383885.3125"),
                    (450, "375128.75"),
                    (500, "368493.78125"),
                )
            ),
        ),
        paper="L. A. Gatys, A. S. Ecker, M. Bethge, Image Style Transfer Using Convolutional Neural Networks, CVPR "
        "2016; official code leongatys/PytorchNeuralStyleTransfer (NeuralStyleTransfer.ipynb)",
    ),
    Source(
        "johnson2016",
        "Johnson et al., Perceptual Losses for Real-Time Style Transfer (ECCV 2016)",
        "",
        (
            (
                "Fig. 3 feature reconstructions (VGG-16 relu1_2 .. relu4_3)",
                "higher layers keep content and spatial structure, not colour, texture, exact shape",
            ),
            ("Fig. 5", "one forward pass reaches the Gatys objective of about 50 to 100 L-BFGS iterations"),
            (
                "Table 1 (GTX Titan X)",
                "seconds of 100/300/500 L-BFGS iterations and of one forward pass at 256, 512 "
                "and 1024 px: the source_seconds and source_speedup columns of E10's table1.csv",
            ),
            ("Table 1 speed-up", "about three orders of magnitude at 500 iterations"),
        ),
        paper="J. Johnson, A. Alahi, L. Fei-Fei, Perceptual Losses for Real-Time Style Transfer and "
        "Super-Resolution, ECCV 2016 (arXiv 1603.08155)",
    ),
    Source(
        "upes",
        "UPES B.Tech report (appendix code: Gatys with Adam)",
        "004_cd6a8acf84783d6c.txt",
        (
            ("Total loss at step 1600 (ImageNet VGG19)", "3145412.75"),
            ("Total loss at step 2000 (ImageNet VGG19)", "2023719.125"),
        ),
    ),
)


@dataclass
class Doc:
    """A report as blocks: ("h", level, text) | ("p", text) | ("table", DataFrame) | ("img", Path, caption)."""

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


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, Path):  # a file a table cell names (see _file_cells); HTML shows its name
        return v.name
    return str(v)


def _md_cell(v, base: Path) -> str:
    if isinstance(v, Path):  # a link that works from the report's folder, not only from the results'
        return f"[{v.name}]({os.path.relpath(v, base)})"
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
            out += [f"![{b[2]}]({os.path.relpath(b[1], base)})", ""]
    return "\n".join(out)


def _inline_md(text: str) -> str:
    """The little Markdown our paragraphs use: **bold** and `code`."""
    s = html.escape(text)
    parts = s.split("**")
    s = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = s.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html_body(doc: Doc, level_shift: int = 0) -> str:
    out = [f"<h{1 + level_shift}>{html.escape(doc.title)}</h{1 + level_shift}>"]
    for b in doc.blocks:
        if b[0] == "h":
            n = min(6, b[1] + level_shift)
            out.append(f"<h{n}>{html.escape(b[2])}</h{n}>")
        elif b[0] == "p":
            out.append(f"<p>{_inline_md(b[1])}</p>")
        elif b[0] == "table":
            df = b[1]
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>"
                for r in df.itertuples(index=False)
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b[0] == "img":
            data = base64.b64encode(Path(b[1]).read_bytes()).decode()
            out.append(
                f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(b[2])}</figcaption></figure>"
            )
    return "\n".join(out)


HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;padding:3px 6px}"
    "th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}code{background:#f3f3f3}"
    "section{border-top:2px solid #888;margin-top:2em}"
)


def load_manifests(results: Path) -> dict[str, dict]:
    """Complete experiment folders only (a folder without a complete manifest is not a result)."""
    out = {}
    for m in sorted(Path(results).glob("*/manifest.json")):
        try:
            data = json.loads(m.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("status") == "complete":
            out[m.parent.name] = data | {"_dir": str(m.parent)}
    return out


def reevaluate(manifest: dict, claim_id: str) -> dict:
    """The claim's verdict recomputed from the CSV and filter recorded in the manifest."""
    rec = manifest["claims"][claim_id]
    df = pd.read_csv(Path(manifest["_dir"]) / rec["csv"])
    if rec.get("where"):
        df = df.query(rec["where"])
    return claims_mod.evaluate(claim_id, df) | {k: rec.get(k) for k in ("csv", "where", "weights", "profile", "caveat")}


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


def _experiment_section(doc: Doc, name: str, m: dict | None) -> None:
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
    for note in m.get("notes", []):
        doc.p(note)
    if m.get("claims"):
        rows = []
        for cid in sorted(m["claims"]):
            v = reevaluate(m, cid)
            rows.append({"claim": cid, "verdict": v["verdict"], "measured": v["measured"], "rule": v["rule"]})
        doc.h(3, "Claims")
        doc.table(pd.DataFrame(rows))
    for f in m.get("files", []):
        p = folder / f
        if p.suffix == ".csv":
            df = pd.read_csv(p)
            doc.h(3, f)
            if len(df) <= MAX_TABLE_ROWS:
                doc.table(_file_cells(df.drop(columns=[c for c in ("profile", "device") if c in df.columns]), folder))
            else:
                doc.p(f"{len(df)} rows: see `{os.path.relpath(p, folder.parent.parent)}`.")
    for f in m.get("files", []):
        p = folder / f
        if p.suffix == ".png" and "/" not in f:  # figures; per-run output images stay in outputs/
            doc.img(p, f"{name}: {p.stem}")


def source_experiments(src: Source) -> list[str]:
    """The experiments whose Spec names this source (registry order: e1, e2, ..., e10)."""
    return [name for name, spec in registry.specs().items() if src.key in spec.sources]


def source_report(src: Source, manifests: dict[str, dict]) -> Doc:
    doc = Doc(src.title)
    experiments = source_experiments(src)
    ran = [manifests[e] for e in experiments if e in manifests]
    if any(not m.get("imagenet") for m in ran):
        doc.p(RANDOM_BANNER)
    where = f"`shared/seeds/{src.seed}`" if src.seed else src.paper
    doc.p(f"Source: {where}. Experiments: {', '.join(experiments)}.")
    if src.own_numbers:
        doc.h(2, "The source's own numbers")
        doc.table(pd.DataFrame(src.own_numbers, columns=["what", "source"]))
    for e in experiments:
        _experiment_section(doc, e, manifests.get(e))
    return doc


def claims_index(manifests: dict[str, dict]) -> Doc:
    doc = Doc("nstbench: claims index")
    if any(not m.get("imagenet") for m in manifests.values()):
        doc.p(RANDOM_BANNER)
    doc.p(
        "Each verdict is computed from the experiment's CSV by the rule stated beside it "
        "(nstbench/claims.py); `inconclusive` means the table cannot decide."
    )
    rows = []
    for cid, claim in claims_mod.CLAIMS.items():
        found = [(n, m) for n, m in manifests.items() if cid in m.get("claims", {})]
        if not found:
            name = registry.experiment_of_claim(cid)
            rows.append(
                {
                    "claim": cid,
                    "source": claim.source,
                    "text": claim.text,
                    "measured": f"`make {name.split('_')[0]}`" if name else "",
                    "verdict": "not run",
                    "rule": "",
                    "profile": "",
                    "weights": "",
                }
            )
            continue
        name, m = found[0]
        v = reevaluate(m, cid)
        rows.append(
            {
                "claim": cid,
                "source": claim.source,
                "text": claim.text,
                "measured": v["measured"],
                "verdict": v["verdict"],
                "rule": v["rule"],
                "profile": m.get("profile_label", m.get("profile")),
                "weights": m.get("weights_kind"),
            }
        )
    doc.table(pd.DataFrame(rows))
    doc.h(2, "Reports")
    doc.p(" · ".join(f"{s.key}.md: {s.title}" for s in SOURCES))
    return doc


def build_reports(results: str | Path = "results", out: str | Path = "reports") -> list[Path]:
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise NstbenchError(f"results folder not found: {results} (make reproduce, or an experiment script, writes it)")
    manifests = load_manifests(results)
    if not manifests:
        raise NstbenchError(
            f"{results} holds no complete experiment results (no <experiment>/manifest.json with "
            "status complete); run `make reproduce` or an experiment script first"
        )
    if out.exists() and not out.is_dir():
        raise NstbenchError(f"--out {out} is a file; give a folder for the reports")
    ensure_writable_dir(out)
    with output_lock(out, "report"):
        return _write_reports(manifests, out)


def _write_reports(manifests: dict[str, dict], out: Path) -> list[Path]:
    docs = [("index", claims_index(manifests))] + [(s.key, source_report(s, manifests)) for s in SOURCES]
    written = []
    for key, doc in docs:
        written.append(atomic_write_text(out / f"{key}.md", to_markdown(doc, out)))
    body = "\n".join(
        f"<section id='{k}'>{to_html_body(d, level_shift=0 if k == 'index' else 1)}</section>" for k, d in docs
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>nstbench reports</title>"
        f"<style>{HTML_STYLE}</style></head><body>{body}</body></html>\n"
    )
    written.append(atomic_write_text(out / "index.html", page))
    return written
