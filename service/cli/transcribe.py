"""`sourcebook transcribe`: one file through the pipeline, without a server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipelines.device import resolve_device
from pipelines.errors import PipelineError
from pipelines.threads import use_torch_threads
from service.cli.common import fail, load_settings
from service.filemodes import write_private


def transcribe(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    language: Annotated[str, typer.Option(help="auto, zh, en, ...")] = "auto",
    backend: Annotated[str, typer.Option(help="faster-whisper or openai-whisper")] = "",
    model: Annotated[str, typer.Option(help="base, tiny.en, or a local model path")] = "",
    num_speakers: Annotated[int | None, typer.Option(help="Exact speaker count, if known")
                            ] = None,
    diarize: Annotated[bool, typer.Option(help="Find who spoke when")] = True,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: next to FILE)")
                   ] = None,
    formats: Annotated[str, typer.Option(help="Comma-separated: txt,srt,json,vtt,md")
                       ] = "txt,srt,json",
) -> None:
    """Transcribe a file locally, without a server; writes txt, srt and json."""
    # rich's progress bar and the pipeline runner load only when transcribing.
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pipelines.export import WRITERS, ExportDoc, ExportSegment
    from pipelines.runner import ModelCache, RunOptions, run, run_stages

    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    settings = load_settings()
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in WRITERS]
    if unknown:
        fail(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(WRITERS)}")
    try:
        backend, default_model = settings.asr_default(backend or None)
    except ValueError:
        fail(f"unknown backend {backend!r}; use faster-whisper or openai-whisper")
        return
    options = RunOptions(
        backend=backend,  # type: ignore[arg-type]
        model=model or default_model,
        language=language,
        beam_size=settings.beam_size,
        compute_type=settings.compute_type,
        diarize=diarize,
        num_speakers=num_speakers,
        diarization_pipeline=settings.diarization_pipeline or None,
    )
    stages = run_stages(diarize)
    threads = settings.threads_per_job(1)  # the one job of this process
    use_torch_threads(threads)
    with Progress(TextColumn("{task.description:<10}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn()) as bar:
        ids = {s.value: bar.add_task(s.value, total=1.0) for s in stages}

        def progress(stage: str, fraction: float) -> None:
            if stage in ids:
                bar.update(ids[stage], completed=fraction)

        try:
            device = resolve_device(settings.device)
            result = run(file, options, models=ModelCache(settings.models_dir, keep=False,
                                                          cpu_threads=threads, device=device),
                         progress=progress)
        except PipelineError as exc:
            fail(str(exc))
            return
    doc = ExportDoc(
        title=file.name,
        language=result.language,
        metadata={"source": file.name, "language": result.language,
                  "model": f"{result.transcription.backend} {result.transcription.model}"},
        segments=[ExportSegment(start=s.start, end=s.end, speaker=s.speaker, label=s.speaker,
                                text=s.text, language=s.language,
                                words=tuple({"start": w.start, "end": w.end, "text": w.text,
                                             "probability": w.probability} for w in s.words))
                  for s in result.segments],
    )

    target = out or file.parent
    for fmt in chosen:
        path = target / f"{file.stem}.{fmt}"
        write_private(path, WRITERS[fmt](doc).encode("utf-8"))
        typer.echo(f"wrote {path}")
    speakers = len({s.speaker for s in result.segments})
    typer.echo(f"{len(result.segments)} segments, {speakers} speaker(s), language "
               f"{result.language}; stage seconds: {result.timings}")


def register(app: typer.Typer) -> None:
    app.command()(transcribe)
