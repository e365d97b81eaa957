"""Rehearse a study: synthetic participants through the real endpoints over simulated weeks.

The rehearsal itself is ``prc_site.simulation``."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from participants.models import Study
from participants.paper import PAPER_ARMS
from prc_site import simulation
from surveys import effects


class Command(BaseCommand):
    help = (
        "Create a simulated study and drive synthetic participants through every endpoint over simulated weeks, "
        "with planted treatment effects; then estimate the effects and print them beside what was planted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", default="sim-study", help="Slug of the new, simulated study.")
        parser.add_argument("--participants", type=int, default=200, help="People who follow the vendor link.")
        parser.add_argument("--weeks", type=int, default=8, help="Simulated weeks, ending yesterday.")
        parser.add_argument("--seed", type=int, default=0, help="Everything random follows from it.")
        parser.add_argument(
            "--effect",
            action="append",
            default=[],
            metavar="OUTCOME[:ARM]=EFFECT",
            help="A planted effect, repeatable: survey indexes "
            f"({', '.join(simulation.SURVEY_OUTCOMES)}) in control SDs, {', '.join(simulation.DAILY_OUTCOMES)} in "
            "minutes a day of the platform's users (active_minutes: every platform); without ARM, every treatment "
            "arm.",
        )
        parser.add_argument(
            "--arms",
            default=",".join(a.slug for a in PAPER_ARMS),
            help="The paper's arms to use, comma-separated (control is always one).",
        )
        parser.add_argument("--baseline-days", type=int, default=14, help="The study's baseline days.")
        parser.add_argument("--inclusion-days", type=int, default=7, help="The study's inclusion days.")
        parser.add_argument("--rank-every", type=int, default=1, help="Each person sends a slate every N days.")
        parser.add_argument(
            "--vendor",
            action="append",
            default=[],
            metavar="SLUG=SHARE",
            help="A vendor whose link people arrive through, with its share of arrivals (relative to the others), "
            f"repeatable; default one, {simulation.DEFAULT_VENDOR!r}.",
        )
        parser.add_argument("--name", default="", help="The study's name (default: one that says SIMULATED).")
        parser.add_argument(
            "--hold-ms",
            type=int,
            default=0,
            help="The study's hold in ms, ramped up over the baseline days; slates record it, nobody waits for it.",
        )
        parser.add_argument(
            "--platform-start",
            action="append",
            default=[],
            metavar="PLATFORM=DAY",
            help="The simulated day (from 0) the treatment arms go live on a platform, repeatable; default day 0.",
        )
        defaults = {f.name: f.default for f in dataclasses.fields(simulation.Plan)}
        for name, what in simulation.FUNNEL_SHARES.items():
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                type=float,
                default=defaults[name],
                metavar="CHANCE",
                help=f"{what} (default %(default)s).",
            )
        parser.add_argument(
            "--pay-out",
            action="store_true",
            help="On the last day, a payments researcher approves every owed credit in the admin, exports the payout "
            "batch and imports the provider's results, all paid (else credits stay owed).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="Processes that live the enrolled people's days side by side (each its own database connection); "
            "the same seed gives the same people and arms whatever the number.",
        )
        parser.add_argument(
            "--skip-existing", action="store_true", help="Do nothing if the simulated study exists already (the demo)."
        )
        parser.add_argument("--no-estimates", action="store_true", help="Skip computing the effects at the end.")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("simulate_study is refused when PRC_ENV=production: it creates synthetic participants")
        existing = Study.objects.filter(slug=options["slug"]).first()
        if existing is not None and existing.simulated and options["skip_existing"]:
            self.stdout.write(f"Simulated study {existing.slug!r} exists already: nothing to do")
            return
        plan = self.plan(options)
        started = time.perf_counter()
        progress = self.stdout.write if options["verbosity"] > 1 else None
        study, tally = simulation.simulate_study(plan, progress=progress, workers=options["workers"])
        seconds = time.perf_counter() - started
        self.stdout.write(f"Simulated study {study.slug!r} ({study.name}) in {seconds:.1f} s")
        for line in tally.lines():
            self.stdout.write(f"  {line}")
        if options["no_estimates"]:
            return
        run = effects.run_effects(study=study)
        implied = self.implied(plan, study)
        self.stdout.write(f"Effect estimates ({run.status}):")
        for row in run.estimates:
            self.stdout.write(
                f"  {row['spec']} {row['outcome']:<24} {row['sample']:<26} {row['estimate']:+.3f} "
                f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]  "
                f"{self.planted(plan, implied, row['outcome'], row['sample'])}"
            )

    def implied(self, plan: simulation.Plan, study: Study) -> dict[str, dict[str, float]]:
        """Each treatment arm's planted survey effects as they reach every index (arm -> index -> control SDs), on
        the last follow-up's questions; none when no survey outcome was planted."""
        survey_effects = {o: plan.effects[o] for o in simulation.SURVEY_OUTCOMES if o in plan.effects}
        if not survey_effects:
            return {}
        questions = list(study.waves.filter(kind="endline").get().instrument.questions.all())
        by_planted: dict[tuple[tuple[str, float], ...], dict[str, float]] = {}
        implied = {}
        for arm in (a for a in plan.arms if a != "control"):
            planted = tuple((o, by_arm.get(arm, 0.0)) for o, by_arm in survey_effects.items())
            if planted not in by_planted:
                by_planted[planted] = simulation.implied_index_effects(questions, dict(planted), seed=plan.seed)
            implied[arm] = by_planted[planted]
        return implied

    def planted(self, plan: simulation.Plan, implied: dict[str, dict[str, float]], outcome: str, sample: str) -> str:
        """What was planted on an estimate's outcome: for an arm, its effect; pooled, the mean over the treatment
        arms. An index with nothing planted on it can still move through items it shares with a planted outcome:
        then the label says how much (``implied``). Active minutes are planted per user of the platform (S1 over
        everyone reads less: non-users stay 0)."""
        arms = [a for a in plan.arms if a != "control"] if sample == "pooled" else [sample]
        platform, _, measure = outcome.rpartition(".")
        if not platform:  # a survey index: planted, moved through shared items, or answered alike in every arm
            if outcome not in plan.effects:
                moved = [implied.get(arm, {}).get(outcome, 0.0) for arm in arms]
                if abs(mean := sum(moved) / len(moved)) >= 0.005:
                    return f"not planted; about {mean:+.2f} through items it shares with a planted outcome"
            effects_ = [plan.effects.get(outcome, {}).get(arm, 0.0) for arm in arms]
            return f"planted {sum(effects_) / len(effects_):+.3f}"
        if measure == "active_minutes":
            effects_ = [simulation.planted_minutes(plan.effects, platform, arm) for arm in arms]
            return f"planted {sum(effects_) / len(effects_):+.3f} a user-day"
        return "(not planted; follows active minutes)"

    def plan(self, options: dict[str, Any]) -> simulation.Plan:
        arms = tuple(dict.fromkeys(["control", *(a.strip() for a in options["arms"].split(",") if a.strip())]))
        known = {a.slug for a in PAPER_ARMS}
        if unknown := [a for a in arms if a not in known]:
            raise CommandError(f"Unknown arms: {', '.join(unknown)} (the paper's are {', '.join(sorted(known))})")
        if len(arms) < 2:
            raise CommandError("A study needs a treatment arm besides control")
        if Study.objects.filter(slug=options["slug"]).exists():
            raise CommandError(f"A study {options['slug']!r} exists already; simulate into a new --slug")
        if options["participants"] < 1 or options["weeks"] < 1 or options["workers"] < 1:
            raise CommandError("--participants, --weeks and --workers must be at least 1")
        try:
            planted = simulation.merge_effects([simulation.parse_effect(e, arms) for e in options["effect"]])
            funnel: dict[str, Any] = {name: options[name] for name in simulation.FUNNEL_SHARES}
            if options["vendor"]:
                funnel["vendors"] = tuple(simulation.parse_vendor(v) for v in options["vendor"])
            plan = simulation.Plan(
                slug=options["slug"],
                participants=options["participants"],
                weeks=options["weeks"],
                seed=options["seed"],
                effects=planted,
                arms=arms,
                baseline_days=options["baseline_days"],
                inclusion_days=options["inclusion_days"],
                rank_every=max(1, options["rank_every"]),
                pay_out=options["pay_out"],
                name=options["name"],
                hold_ms=options["hold_ms"],
                platform_starts=dict(simulation.parse_platform_start(p) for p in options["platform_start"]),
                **funnel,
            )
            simulation.waves_for(plan)
        except ValueError as error:
            raise CommandError(str(error)) from None
        return plan
