"""Compare two policy versions by off-policy evaluation on the same held-out logged decisions.

Both versions are loaded from their verified artifacts and score every held-out decision of the
window; each becomes a target policy through the serving exploration (the same ε and τ for
both). Doubly robust with cross-fitted reward predictions is the headline method; SNIPS is
reported beside it as a cross-check. Held-out means the trainer's held-out split (decision_id
hash), so a version trained here never saw the rewards it is judged on.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from policyhub.domain.errors import LogWindowTooLargeError, invalid
from policyhub.domain.holdout import HOLDOUT_FRACTION, splits_holding
from policyhub.domain.versions import FeatureSchema, PolicyVersion
from policyhub.ml.compare import DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW_HOURS, CompareResult, compare
from policyhub.ml.dataset import LoggedDataset, holdout_sql
from policyhub.ml.estimators import FloatArray, RatioBootstrap
from policyhub.ml.exploration import (
    DEFAULT_EPSILON,
    DEFAULT_TEMPERATURE,
    action_probabilities_flat,
)
from policyhub.ml.reward_model import cross_fitted_predictions
from policyhub.ml.scorers import onnx_scorer
from policyhub.ml.shadow import ShadowAgreement
from policyhub.ports import ArtifactStore, Clock, InteractionLog
from policyhub.services.logged_data import LogWindow
from policyhub.services.registry import Registry


@dataclass(frozen=True)
class CompareSettings:
    epsilon: float = DEFAULT_EPSILON
    temperature: float = DEFAULT_TEMPERATURE
    holdout_fraction: float = HOLDOUT_FRACTION
    n_bootstrap: int = 1000
    reward_model_extra_below: int = 2000
    """With fewer held-out decisions than this, the doubly robust reward model is also fit on
    the window's training part (read in a second pass; decision 092)."""


@dataclass
class Comparison:
    """API.md's compare response, plus the SNIPS cross-check and how long each step took."""

    result: CompareResult | None
    agent_type: str
    baseline_version: str
    candidate_version: str
    n_samples: int
    shadow: ShadowAgreement | None
    reasons: list[str]
    snips: dict[str, Any] | None = None
    window_hours: int = DEFAULT_WINDOW_HOURS
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        shadow = asdict(self.shadow) if self.shadow else None
        if self.result is None:
            empty = {"estimated_reward": None, "ci_low": None, "ci_high": None}
            return {
                "agent_type": self.agent_type,
                "baseline_version": self.baseline_version,
                "candidate_version": self.candidate_version,
                "is_improvement": False,
                "recommendation": "collect_more_data",
                "method": "doubly_robust",
                "n_samples": self.n_samples,
                "effective_sample_size": 0.0,
                "baseline": empty,
                "candidate": empty,
                "lift": {"absolute": None, "relative": None, "ci_low": None, "ci_high": None},
                "shadow": shadow,
                "reasons": self.reasons,
                "snips": None,
                "window_hours": self.window_hours,
            }
        body = self.result.to_dict()
        body.update(
            shadow=shadow,
            reasons=self.reasons,
            snips=self.snips,
            window_hours=self.window_hours,
        )
        return body


class CompareService:
    def __init__(
        self,
        registry: Registry,
        artifacts: ArtifactStore,
        logs: InteractionLog,
        clock: Clock,
        max_artifact_bytes: int,
        settings: CompareSettings | None = None,
    ) -> None:
        self._registry = registry
        self._artifacts = artifacts
        self._logs = logs
        self._clock = clock
        self._max_artifact_bytes = max_artifact_bytes
        self.settings = settings or CompareSettings()

    def _load(self, tenant_id: str, version: PolicyVersion) -> bytes:
        return self._artifacts.get(
            tenant_id, version.agent_type, version.artifact.sha256, self._max_artifact_bytes
        )

    def compare(
        self,
        tenant_id: str,
        agent_type: str,
        baseline_version: str,
        candidate_version: str,
        window_hours: int = DEFAULT_WINDOW_HOURS,
        min_samples: int = DEFAULT_MIN_SAMPLES,
    ) -> Comparison:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        baseline = self._registry.version(tenant_id, agent_type, baseline_version)
        candidate = self._registry.version(tenant_id, agent_type, candidate_version)
        schema = baseline.feature_schema
        if candidate.feature_schema != schema:
            raise invalid(
                "body.candidate_version",
                f"{candidate_version} takes context_dim {candidate.feature_schema.context_dim}, "
                f"item_dim {candidate.feature_schema.item_dim}; {baseline_version} takes "
                f"{schema.context_dim}, {schema.item_dim}: they cannot score the same decisions",
                code="feature_dimension_mismatch",
            )
        score_baseline = onnx_scorer(self._load(tenant_id, baseline))
        score_candidate = onnx_scorer(self._load(tenant_id, candidate))
        t1 = time.perf_counter()
        now = self._clock.now()
        fraction = self.settings.holdout_fraction
        try:
            logs = self._logs.table(
                tenant_id, agent_type, now - timedelta(hours=window_hours), now,
                splits_holding(fraction, held_out=True),
            )  # fmt: skip
        except LogWindowTooLargeError as exc:
            raise invalid("body.window_hours", exc.details[0].issue) from exc
        with logs as table:
            window = LogWindow(table, holdout_sql(fraction))
            schemas = window.schemas()
            held_out, report = window.dataset(schema)
            shadow = window.shadow_agreement(candidate_version)
        if report.decisions and schema not in schemas:
            seen = ", ".join(
                f"context_dim {s.context_dim} item_dim {s.item_dim} ({n})"
                for s, n in schemas.most_common(3)
            )
            raise invalid(
                "body.baseline_version",
                f"the versions take context_dim {schema.context_dim}, item_dim "
                f"{schema.item_dim} but the decisions logged in the last {window_hours} h "
                f"have {seen}",
                code="feature_dimension_mismatch",
            )
        shadow_or_none = shadow if shadow.decisions else None
        t2 = time.perf_counter()
        timings.update(load_versions=t1 - t0, read_logs=t2 - t1)
        base = Comparison(
            None, agent_type, baseline_version, candidate_version, held_out.n_decisions,
            shadow_or_none, [], window_hours=window_hours, timings=timings,
        )  # fmt: skip
        if held_out.n_decisions == 0:
            base.reasons = [
                f"no held-out decision with feedback in the last {window_hours} h "
                f"({report.decisions} decisions read, {report.joined} with feedback)"
            ]
            return base
        baseline_probs = self._probabilities(held_out, score_baseline(held_out.features))
        candidate_probs = self._probabilities(held_out, score_candidate(held_out.features))
        t3 = time.perf_counter()
        reasons: list[str] = []
        extra = None
        if held_out.n_decisions < self.settings.reward_model_extra_below:
            extra = self._training_part(tenant_id, agent_type, schema, now, window_hours)
            if extra.n_decisions:
                reasons.append(
                    f"doubly robust's reward model is fit on {extra.n_decisions} decisions of "
                    "the training part besides the other held-out fold"
                )
        t3b = time.perf_counter()
        try:
            q: FloatArray | None = cross_fitted_predictions(held_out, extra=extra)
        except ValueError as exc:
            q = None
            reasons.append(f"doubly robust is not possible here ({exc}); SNIPS is used")
        common: dict[str, Any] = {
            "agent_type": agent_type,
            "baseline_version": baseline_version,
            "candidate_version": candidate_version,
            "min_samples": min_samples,
            "n_bootstrap": self.settings.n_bootstrap,
            "shadow": shadow_or_none,
            # DR and SNIPS on the same resamples: drawn once, as compare() would draw them.
            "bootstrap": RatioBootstrap(
                held_out.n_decisions, n_bootstrap=self.settings.n_bootstrap
            ),
        }
        result = compare(
            held_out, baseline_probs, candidate_probs,
            method="dr" if q is not None else "snips", reward_predictions=q, **common,
        )  # fmt: skip
        snips = compare(held_out, baseline_probs, candidate_probs, method="snips", **common)
        t4 = time.perf_counter()
        timings.update(score=t3 - t2, read_training_logs=t3b - t3, estimate=t4 - t3b)
        base.result = result
        base.reasons = [*result.reasons, *reasons, _cross_check(result, snips)]
        if shadow_or_none is not None and shadow_or_none.top1_agreement is not None:
            base.reasons.append(
                f"shadow: {shadow_or_none.decisions} decisions, top-1 agreement "
                f"{shadow_or_none.top1_agreement:.1%}"
            )
        base.snips = {
            "baseline": asdict(snips.baseline),
            "candidate": asdict(snips.candidate),
            "lift": asdict(snips.lift),
        }
        return base

    def _training_part(
        self,
        tenant_id: str,
        agent_type: str,
        schema: FeatureSchema,
        now: datetime,
        window_hours: int,
    ) -> LoggedDataset:
        """The window's decisions with feedback that are not held out (what trainers fit on)."""
        fraction = self.settings.holdout_fraction
        with self._logs.table(
            tenant_id, agent_type, now - timedelta(hours=window_hours), now,
            splits_holding(fraction, held_out=False),
        ) as table:  # fmt: skip
            data, _ = LogWindow(table, holdout_sql(fraction, held_out=False)).dataset(schema)
        return data

    def _probabilities(self, data: LoggedDataset, scores: FloatArray) -> FloatArray:
        return action_probabilities_flat(
            np.asarray(scores, dtype=np.float64),
            data.offsets,
            self.settings.epsilon,
            self.settings.temperature,
        )


def _cross_check(headline: CompareResult, snips: CompareResult) -> str:
    agree = np.sign(headline.lift.absolute) == np.sign(snips.lift.absolute)
    verdict = "agrees in direction" if agree else "DISAGREES in direction: treat with care"
    return (
        f"SNIPS cross-check: lift {snips.lift.absolute:+.4f} "
        f"[{snips.lift.ci_low:+.4f}, {snips.lift.ci_high:+.4f}] {verdict}"
    )
