"""Deciding generation commands. `generate_content` is the limit check and the count, taken before
any provider is called; `record_generation_outcome` records what the provider answered. The
provider call itself happens between the two, outside any decision (gateway/routes/generations.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import commands as cmd
from schemas import events as ev

from domain.base import Context
from domain.generation.aggregate import Generation
from domain.generation.brand_voice import BrandVoice
from domain.registry import Outcome, handles
from domain.rejections import Reason, Rejected
from domain.workspace.aggregate import Workspace

if TYPE_CHECKING:
    from domain.application import HeraldApplication


@handles(cmd.GenerateContent)
def generate_content(app: HeraldApplication, ctx: Context, p: cmd.GenerateContent) -> Outcome:
    workspace = app.workspace(ctx)
    generation, result = request_generation(app, ctx, workspace, p)
    return [workspace, generation], result


def request_generation(app: HeraldApplication, ctx: Context, workspace: Workspace,
                       p: cmd.GenerateContent) -> tuple[Generation, dict]:
    """The generation counted (refused over the day's limit) and requested; for generate_content and
    the automation rules' runs."""
    if app.find(Generation, Generation.key(ctx.workspace_id, p.generation_id)) is not None:
        raise Rejected(Reason.generation_exists, f"generation {p.generation_id} already exists")
    workspace.count_generation(ctx)
    day = workspace.local_day(ctx.now)
    voice = app.find(BrandVoice, ctx.workspace_id)
    generation = Generation.request(ctx, ev.GenerationRequested(
        generation_id=p.generation_id, topic=p.topic, platforms=[str(x) for x in p.platforms], tone=p.tone,
        language=p.language, context=p.context, media_description=p.media_description,
        brand_voice_version=voice.voice_version if voice else 0, day=day,
    ))
    # The voice travels in the result: the caller builds the prompt from exactly the version recorded.
    result = {"generation_id": p.generation_id, "day": day, "generations_today": workspace.generations_on(day),
              "daily_limit": workspace.limit("daily_generations"), "brand_voice": voice.voice if voice else None}
    return generation, result


@handles(cmd.SetBrandVoice)
def set_brand_voice(app: HeraldApplication, ctx: Context, p: cmd.SetBrandVoice) -> Outcome:
    app.workspace(ctx)
    fields = p.model_dump()
    voice = app.find(BrandVoice, ctx.workspace_id)
    if voice is None:
        voice = BrandVoice.set_first(ctx, fields)
    else:
        voice.change(ctx, fields)
    return [voice], dict(voice.voice)


@handles(cmd.RecordGenerationOutcome)
def record_generation_outcome(app: HeraldApplication, ctx: Context, p: cmd.RecordGenerationOutcome) -> Outcome:
    generation = app.find(Generation, Generation.key(ctx.workspace_id, p.generation_id))
    if generation is None or generation.workspace_id != ctx.workspace_id:
        raise Rejected(Reason.unknown_generation, f"no generation {p.generation_id} in this workspace")
    common = {"generation_id": p.generation_id, "provider": p.provider, "model": p.model,
              "prompt_sha256": p.prompt_sha256, "tokens_in": p.tokens_in, "tokens_out": p.tokens_out,
              "latency_ms": p.latency_ms}
    if p.succeeded:
        generation.succeed(ctx, ev.GenerationSucceeded(
            captions={str(c.platform): c.text for c in p.captions}, hashtags=list(p.hashtags), **common))
    else:
        generation.fail(ctx, ev.GenerationFailed(reason=str(p.failure), detail=p.detail, **common))
    # The whole outcome is the result, so a repeated request (same Idempotency-Key) answers with it.
    return [generation], {"status": str(generation.status), **generation.outcome}
